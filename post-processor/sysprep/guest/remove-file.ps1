# Removes a file winbake put into the guest.
$ErrorActionPreference = 'Stop'
Remove-Item -LiteralPath {{ps .Path}} -Force
