# winbake-updates: cloudbase-init LocalScript that retries, at first boot,
# the update packages that failed while the image was built. Exit 1001 asks
# cloudbase-init for a reboot without running the script again; 0 is done.
$ErrorActionPreference = 'Continue'
$winbake = 'C:\ProgramData\winbake'
$log = Join-Path $winbake 'retry-updates.log'
$done = Join-Path $winbake 'retry-updates.done'
if (Test-Path $done) { exit 0 }
$reboot = $false
foreach ($package in Get-Content (Join-Path $winbake 'pending-updates.txt')) {
    Add-Content $log "$(Get-Date -Format o) installing $package"
    $out = & (Join-Path $winbake 'winbake-agent.exe') install $package 2>> $log
    Add-Content $log $out
    try {
        if (($out | Select-Object -Last 1 | ConvertFrom-Json).reboot_required) { $reboot = $true }
    } catch {
        Add-Content $log "unreadable answer from winbake-agent: $_"
    }
}
Set-Content $done 'done'
if ($reboot) { exit 1001 }
exit 0
