REM winbake: enable WinRM for the Packer build.
REM
REM Each non-comment line becomes one FirstLogonCommands SynchronousCommand,
REM in this order, after all user commands; a REM line directly above a
REM command becomes its Description. The file also runs as a batch file.
REM WinRM authentication (Basic) is switched on last, so Packer cannot log in
REM before everything else is configured. AllowUnencrypted and Basic are for
REM the build only; sysprep and cloudbase-init reset the image later.

REM Set network profiles to Private (winrm quickconfig refuses Public networks)
powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "Get-NetConnectionProfile | Set-NetConnectionProfile -NetworkCategory Private"
REM Give local administrators a full token over the network (LocalAccountTokenFilterPolicy)
cmd.exe /c reg add HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System /v LocalAccountTokenFilterPolicy /t REG_DWORD /d 1 /f
REM Create the WinRM HTTP listener
cmd.exe /c winrm quickconfig -quiet
REM Allow unencrypted WinRM traffic (build only)
cmd.exe /c winrm set winrm/config/service @{AllowUnencrypted="true"}
REM Start WinRM delayed-automatically at boot
cmd.exe /c sc.exe config WinRM start= delayed-auto
REM Open TCP 5985 for WinRM on every firewall profile
cmd.exe /c netsh advfirewall firewall add rule name="WinRM HTTP (winbake build)" dir=in action=allow protocol=TCP localport=5985 profile=any
REM Enable Basic authentication (build only); Packer can log in from now on
cmd.exe /c winrm set winrm/config/service/auth @{Basic="true"}
REM Make sure the WinRM service is running
cmd.exe /c sc.exe start WinRM
