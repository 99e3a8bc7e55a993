# Lists the full names of the Appx packages named {{.Name}} installed for any
# user, one per line.
$ErrorActionPreference = 'Stop'
$packages = @(Get-AppxPackage -AllUsers -Name {{ps .Name}})
if ($packages.Count -gt 0) { Write-Output $packages.PackageFullName }
