@echo off
rem winbake-updates: retries, at first boot, the update packages that failed
rem while the image was built. Called from SetupComplete.cmd, which Windows
rem runs as LocalSystem after Setup; it must never reboot (Windows Setup does
rem not resume it), so packages that need a reboot finish at the next one.
setlocal
set WINBAKE=C:\ProgramData\winbake
set LOG=%WINBAKE%\retry-updates.log
if exist "%WINBAKE%\retry-updates.done" exit /b 0
for /f "usebackq delims=" %%P in ("%WINBAKE%\pending-updates.txt") do (
  echo %DATE% %TIME% installing %%P>>"%LOG%"
  "%WINBAKE%\winbake-agent.exe" install "%%P" >>"%LOG%" 2>&1
)
echo done>"%WINBAKE%\retry-updates.done"
exit /b 0
