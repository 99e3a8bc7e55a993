REM winbake: enable WinRM over HTTPS for the Packer build.
REM
REM Each non-comment line becomes one FirstLogonCommands SynchronousCommand,
REM in this order, after all user commands; a REM line directly above a
REM command becomes its Description. The file is a Go text/template.
REM The guest is reached over a network, so WinRM speaks HTTPS only, with
REM the build's certificate from the answer medium; the HTTP listener keeps
REM Windows' defaults (Negotiate or Kerberos, encrypted messages only).
REM Basic authentication, when the communicator uses it, is switched on
REM last, so Packer cannot log in before everything else is configured;
REM with AllowUnencrypted off it is accepted over HTTPS only.

REM Set network profiles to Private (winrm quickconfig refuses Public networks)
powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "Get-NetConnectionProfile | Set-NetConnectionProfile -NetworkCategory Private"
REM Give local administrators a full token over the network (LocalAccountTokenFilterPolicy)
cmd.exe /c reg add HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System /v LocalAccountTokenFilterPolicy /t REG_DWORD /d 1 /f
REM Start WinRM with Windows' default HTTP listener (encrypted messages only)
cmd.exe /c winrm quickconfig -quiet
REM Import the build's certificate and key from the answer medium into the machine's store, the key not exportable
cmd.exe /c for %d in (A B D E F G H I J K L M N O P Q R S T U V W X Y Z) do @if exist %d:\{{.PFXFile}} certutil -f -p {{.PFXPassword}} -importpfx My %d:\{{.PFXFile}} NoExport
REM Create the HTTPS listener with that certificate
cmd.exe /c winrm create winrm/config/Listener?Address=*+Transport=HTTPS @{CertificateThumbprint="{{.Thumbprint}}"}
REM Start WinRM delayed-automatically at boot
cmd.exe /c sc.exe config WinRM start= delayed-auto
REM Open TCP {{.Port}} for WinRM over HTTPS on every firewall profile
cmd.exe /c netsh advfirewall firewall add rule name="{{.FirewallRule}}" dir=in action=allow protocol=TCP localport={{.Port}} profile=any
{{- if .Basic}}
REM Enable Basic authentication over HTTPS (build only); Packer can log in from now on
cmd.exe /c winrm set winrm/config/service/auth @{Basic="true"}
{{- end}}
REM Make sure the WinRM service is running
cmd.exe /c sc.exe start WinRM
