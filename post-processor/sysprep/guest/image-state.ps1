# The image state Windows Setup records: IMAGE_STATE_COMPLETE for an
# installed Windows, IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE after
# sysprep /generalize /oobe.
$ErrorActionPreference = 'Stop'
(Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State' -Name ImageState).ImageState
