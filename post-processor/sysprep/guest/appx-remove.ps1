# Removes one Appx package for every user who has it.
$ErrorActionPreference = 'Stop'
Remove-AppxPackage -Package {{ps .FullName}} -AllUsers
