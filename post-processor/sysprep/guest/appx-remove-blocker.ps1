# Removes the Appx package {{.FullName}}, which sysprep named as installed
# for a user but not provisioned for all users: for every user who has it,
# and its provisioned copy when there is one (Microsoft KB 2769827:
# Remove-AppxPackage, then Remove-AppxProvisionedPackage -Online).
$ErrorActionPreference = 'Stop'
Remove-AppxPackage -Package {{ps .FullName}} -AllUsers
$provisioned = @((Get-AppxProvisionedPackage -Online).PackageName)
if ($provisioned -contains {{ps .FullName}}) {
    Remove-AppxProvisionedPackage -Online -PackageName {{ps .FullName}} | Out-Null
    Write-Output {{ps .ProvisionedMarker}}
}
