REM winbake-sysprep: return WinRM to Windows' defaults before generalizing.
REM The lines run as one cmd.exe command line, joined with " & ": each
REM change may end the session it runs over (its listener, its
REM authentication), and the rest must run all the same. What they left is
REM checked afterwards over Windows' default listener.
{{- if .HTTPS}}
REM The build's HTTPS listener and its certificate, key included
winrm delete winrm/config/Listener?Address=*+Transport=HTTPS
powershell.exe -NoProfile -NonInteractive -Command "Remove-Item -Path Cert:\LocalMachine\My\{{.Thumbprint}} -DeleteKey"
{{- end}}
REM The build's firewall rule
netsh advfirewall firewall delete rule name="{{.FirewallRule}}"
REM Windows' defaults: no unencrypted messages, no Basic authentication
winrm set winrm/config/service @{AllowUnencrypted="false"}
winrm set winrm/config/service/auth @{Basic="false"}
