# Lists the full names of the Appx packages named {{.Name}} installed for any
# user, one per line. Windows without the Appx module (some Server Core
# installations) has none; it says so with the marker line.
$ErrorActionPreference = 'Stop'
if (-not (Get-Command -Name Get-AppxPackage -ErrorAction SilentlyContinue)) {
    Write-Output {{ps .NoAppxMarker}}
    exit 0
}
$packages = @(Get-AppxPackage -AllUsers -Name {{ps .Name}})
if ($packages.Count -gt 0) { Write-Output $packages.PackageFullName }
