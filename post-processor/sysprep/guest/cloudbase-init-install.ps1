# Installs cloudbase-init from the uploaded MSI, logging to COM1, with the
# service running as LocalSystem. msiexec is started with -Wait because it
# does not block a console on its own.
$ErrorActionPreference = 'Stop'
$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList {{ps .Arguments}} -Wait -PassThru
exit $p.ExitCode
