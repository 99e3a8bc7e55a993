# Prints "installed" when the service is installed, else "absent". The
# service control manager keeps its database of installed services under
# this registry key: a service exists exactly when its key does.
if (Test-Path -LiteralPath {{ ps .Key }}) {
    Write-Output 'installed'
} else {
    Write-Output 'absent'
}
