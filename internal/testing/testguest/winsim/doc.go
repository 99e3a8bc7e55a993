// Package winsim is the simulated Windows behind winbake's stand-in guest:
// the machine that the stand-in WinRM server (package wsman) runs commands
// on, so that winbake's provisioners, Packer's communicator and
// winbake-agent can be tested on Linux, through the real client stack.
//
// A Machine is one Windows installation. It implements wsman.Host (Start
// runs a WinRM command) and agent.System (Registry, Processes, Power,
// Files: what winbake-agent uses), and it drives the WinRM listener
// through a wsman.PowerControl set with SetPowerControl.
//
//	m, err := winsim.New(winsim.Options{
//		StateDir: t.TempDir(),
//		Users:    []string{"vagrant"},
//		Failf:    t.Errorf,
//		Agent:    agent.Main,
//		Packages: []winsim.Package{
//			{FileName: "windows10.0-kb5044281-x64.msu", Result: winsim.InstallsRebootRequired},
//		},
//		Power: winsim.PowerOptions{ShutdownDelay: 20 * time.Millisecond, BootTime: 50 * time.Millisecond},
//	})
//	srv := wsman.NewServer(..., m)  // the server's own API
//	m.SetPowerControl(srv)
//
// # The rule: never accept what is not understood
//
// The stand-in is a subset of Windows. Whatever falls outside it (a
// command, a cmd.exe built-in, a PowerShell construct, cmdlet, parameter
// or .NET member, a program, a tool argument, a package the catalog does
// not declare, a situation whose real outcome is not known) is reported
// through Options.Failf (tests pass t.Errorf) and kept in Unsupported(),
// and it is answered as Windows answers what it does not know: cmd.exe
// writes "'x' is not recognized as an internal or external command,
// operable program or batch file." on stderr and exits 9009; PowerShell
// writes a CommandNotFoundException record as CLIXML on stderr and exits 1
// (statements after it do not run); tools exit with their "invalid
// parameter" code. A silent exit 0 never hides a gap. Negative tests pass
// a recording Failf.
//
// Where Windows' behaviour is uncertain, the stand-in refuses rather than
// guesses: DISM /Online with an .msu holding .cab files, expand or wusa /extract into a
// directory that does not exist, sysprep with a missing /unattend file.
//
// # Disk and state
//
// Everything lives under Options.StateDir: the file system in fs/<drive>/
// (C, plus Options.Drives), and the registry, servicing store, boot
// history, profiles and computer name in state.json, rewritten atomically
// (temporary file and rename) on every change. New on an existing StateDir
// continues from it: it boots the disk once more (pending servicing
// advances, as on a real reboot), or, with StartOff, leaves it off until
// PowerOn. A fresh StateDir gets a fresh installation: the Windows
// directories, the program files of the simulated tools, the registry keys
// tools read (CurrentVersion with ProductName, EditionID, CurrentBuild,
// UBR, DisplayVersion; ComputerName; the servicing keys; Setup\State
// ImageState) and the Preinstalled packages.
//
// Files are addressed with Windows paths: drive letters, `\` or `/`,
// `.` and `..`, case-insensitive and case-preserving names, trailing dots
// and blanks dropped, reserved characters refused. Errors are Errno values
// (Win32 codes with their messages) wrapped in fs.PathError, and match
// fs.ErrNotExist, fs.ErrExist and fs.ErrPermission. Files.Create creates
// missing parents (the agent.Files contract); Append and the shells'
// redirections do not, as CreateFile does not.
//
// The registry holds keys (case-insensitive) with REG_SZ, REG_EXPAND_SZ,
// REG_DWORD, REG_QWORD, REG_MULTI_SZ and REG_BINARY values; paths take
// any of HKLM\, HKEY_LOCAL_MACHINE\, HKLM:\, HKLM: and Registry::; HKCU is
// HKEY_USERS\<user> of the process's user.
//
// Users are Options.Users; a user's profile (C:\Users\<user>, its
// AppData\Local\Temp) is created at the first logon. A WinRM process gets
// the environment Windows gives one (see the pypsrp captures): the system
// variables, USERNAME, USERDOMAIN and COMPUTERNAME, and with the profile
// USERPROFILE, APPDATA, LOCALAPPDATA and TEMP/TMP in the profile; with
// WINRS_NOPROFILE, USERPROFILE is C:\Users\Default and TEMP C:\Windows\TEMP.
// Commands start in the profile directory unless the shell names a
// WorkingDirectory.
//
// # Commands
//
// Start runs `cmd.exe /c <Command> <Arguments...>`, or with
// WINRS_SKIP_CMD_SHELL the program itself, which must then be a path
// (otherwise the fault 0x80070002, as in the pypsrp capture). A line past
// CreateProcess's 32767 characters faults with 0x800700CE. Processes
// stream stdout and stderr (writes never block; readers see output as it
// is written; wsman.OrderedOutput gives both streams in the order they
// were written), take stdin from Send, and end by exiting, by Terminate
// (exit 0xC000013A), or when the machine shuts down. Output is UTF-8 with
// WINRS_CODEPAGE 65001, else code page 437. The request's context is used
// for its values only: a process outlives the Command request.
//
// cmd.exe: the /c quote rule of `cmd /?` (two quotes around an executable
// with a blank stay, otherwise the first and the last quote go), the
// 8191-character limit ("The command line is too long.", exit 1), %VAR%
// expansion (undefined variables stay as written, as on the command line),
// carets, &, && and ||, redirections >, >>, 2>, >&2, 2>&1 and nul with the
// whitespace rules winrmcp relies on (`echo X >> "f"` appends "X \r\n"),
// and the built-ins echo, set (sorted listing, prefix, assignment), exit
// and exit /b, type, del/erase, mkdir/md, rmdir/rd, cd, ver, rem. Pipes,
// blocks, if, for, call, start and batch files are not modelled.
//
// PowerShell (powershell.exe, Windows PowerShell 5.1): -Command (and a
// bare script), -EncodedCommand (masterzen's `$ProgressPreference =
// 'SilentlyContinue';` prefix is stripped and honoured), -File, - (script
// from stdin), and -NoProfile, -NonInteractive, -NoLogo, -ExecutionPolicy,
// -InputFormat, -OutputFormat Text, -WindowStyle. Scripts are parsed first
// (a parse failure runs nothing), then run: pipelines ending in Out-Null,
// assignments, if/elseif/else, exit, return, throw; strings (verbatim and
// expandable with $var, $env:X and $(...)), numbers, (...), $(...), @(...),
// the comma, -f, -eq/-ne/-gt/-ge/-lt/-le/-like, -contains/-notcontains,
// + and -, -not, -and, -or;
// members of strings and paths, [System.Net.Dns]::GetHostName(),
// [System.IO.Path], [System.IO.File], [System.Convert] base64; the cmdlets
// Write-Host (lines end in "\n"), Write-Output/echo (pipeline output ends
// in "\r\n"), Write-Error, Start-Sleep, Test-Path (files, HKLM:/HKCU:
// registry keys, variable:, env: and Cert:\LocalMachine\My), Get-Location/pwd,
// Set-Location, Remove-Item (files, and certificates with -DeleteKey),
// New-Item, mkdir, Get-Content, Set-Content, and what
// winbake-sysprep uses (sysprep_guest.go, appx.go: Get-/Add-/Remove-
// AppxPackage, Get-/Remove-AppxProvisionedPackage -Online, Optimize-Volume,
// Get-ItemProperty, Start-Process -Wait, Get-Command); native programs with
// Windows PowerShell 5.1's argument passing (blanks quoted, empty arguments
// dropped), $LASTEXITCODE and $?; the automatic and preference variables
// of 5.1 on Server 2022 ($PSVersionTable, $PID, $Host, $PSHOME, $HOME,
// $PWD, $ShellId, the *Preference variables; $IsWindows and the other
// PowerShell 6+ names read as $null, as in 5.1), while a variable that is
// neither assigned by the script nor modelled is reported (psautovars.go).
// Errors go to stderr as one CLIXML
// document of formatted error records; a non-terminating error obeys
// -ErrorAction and $ErrorActionPreference; method exceptions end their
// statement; throw ends the script. Exit codes: `exit N` passes N; under
// -Command a script whose last statement failed (a cmdlet error, a failed
// native command) exits 1; -File exits 0 unless told otherwise; a missing
// -File script exits -196608. Unless $ProgressPreference is
// SilentlyContinue, the first command of an auto-loaded module writes the
// "Preparing modules for first use." progress record (Options.QuietModuleLoad
// turns it off).
//
// Packer's own commands run as they are sent: the WinRM connect check
// (`echo "WinRM connected."`), windows-restart's restart and test commands,
// its hostname check and its check_registry Test-Path calls, the SDK's
// Download script and guest mkdir, and winrmcp's upload: the `echo <base64>
// >> "%TEMP%\winrmcp-<uuid>.tmp"` chunks through cmd.exe, the cleanup
// script through the interpreter, and the restore script, which the
// interpreter cannot run (it loops over .NET streams), is recognised by
// its exact structure (whitespace aside, winrmcp.go), its two parameters
// taken out and its effect performed: replace the destination (exit 1 if
// it is a directory), create the parent, decode the temporary file line by
// line.
//
// Programs: cmd.exe, powershell.exe, dism.exe, wusa.exe, expand.exe,
// shutdown.exe, hostname.exe, netstat.exe (`-n -p TCP`, from the host's
// /proc/net/tcp), net.exe (`net user [name]`), reg.exe (`reg query <key>
// /v <name>`), msiexec.exe (the cloudbase-init MSI and virtio-win's
// qemu-ga-x86_64.msi, which installs the QEMU-GA service),
// Sysprep\sysprep.exe, and the tools that configure WinRM on
// Options.WinRM (winrmconfig.go; winrm_cmd.go, netsh.go, certutil.go): winrm.cmd, netsh.exe (`advfirewall
// firewall` add, delete and show rule) and certutil.exe (-importPFX), at their System32
// paths (found through PATH and PATHEXT: cmd.exe searches the working
// directory first, PowerShell and Processes.Run only PATH), and
// winbake-agent.exe when its file exists in C:\ProgramData\winbake\ or at
// the root of a drive: it runs Options.Agent in-process, with the
// arguments parsed by CommandLineToArgvW rules, the process's streams, and
// the Machine as agent.System for the process's logon.
//
// # Cloudbase-init
//
// RunCloudbaseInit is the cloudbase-init service starting at boot, as
// installed by its MSI, modelled on cloudbase-init's code (see
// cloudbaseinit.go): it reads the configuration file of the service's
// ImagePath as oslo.config does, finds the metadata on a config-2 CD
// (ConfigDriveService with its types and locations), the OpenStack
// metadata API or MAAS's, runs SetHostNamePlugin, CreateUserPlugin,
// SetUserSSHPublicKeysPlugin, UserDataPlugin (#ps1 scripts through the
// PowerShell above), SetUserPasswordPlugin (with first_logon_behaviour's
// forced password change), ConfigWinRMListenerPlugin (an HTTPS listener
// with a self-signed certificate, on Options.WinRM) and
// ConfigWinRMCertificateAuthPlugin, records
// each plugin's state for the instance in the registry, and logs to COM1
// in cloudbase-init's line format. An account whose password must change
// at the next logon is refused by WinRM (PasswordMustChange, used by
// package testguest). Other metadata services, plugins, options and user
// data formats are reported as not understood.
//
// # Servicing
//
// Options.Packages is the catalog: update packages by file name (.msu or
// .cab, matched case-insensitively wherever the file is), each with its
// outcome: Installs (exit 0), InstallsRebootRequired (3010, the package
// "Install Pending" and the keys CBS RebootPending, CBS
// PackagesPending\<identity> and WindowsUpdate\Auto Update\RebootRequired
// set), NotApplicable (DISM 0x800F081E, wusa 0x80240017); RequiresSSU
// (0x800F0823 until the named package is installed), Failures (fail N
// times with FailureCode, counted across reboots), SecondReboot (after the
// first reboot servicing continues and Windows restarts by itself after
// PowerOptions.AutoRebootDelay), InstallTime (the tool runs that long on
// the clock), ShutdownServicing and BootServicing (longer shutdowns and
// boots while pending), UBR (the build revision once installed), and
// Preinstalled. A package installed or pending stays so: DISM adds it
// again with 0 (installed) or 3010 (pending); wusa answers 2359302.
// A package file the catalog does not name is read: a synthetic package
// (a real cabinet with update.mum, or an .msu holding such cabinets and a
// pkgProperties.txt, plus PackageSpecMember) installs as its PackageSpec
// says, under the identity of its update.mum; expand.exe unpacks an .msu's
// real members (see pkgfile.go and testguest.PackageFile).
//
// DISM: /Online with /Add-Package /PackagePath:<file or folder (its .cab
// files, recursively)>; a Windows 11 24H2-layout .msu (payload in a .wim)
// is added from the .msu, with the checkpoint .msu files of the same
// package and a lower version from its folder first, skipping those the
// machine is at or past (an .msu holding .cab files is refused online) [/NoRestart] [/Quiet] [/English] [/LogPath:]
// [/LogLevel:], and /Get-Packages; its output mimics DISM's and it logs to
// C:\Windows\Logs\DISM\dism.log; a missing file exits 2; other options
// exit 87 and are reported. wusa: `<msu> /quiet /norestart` exits 5 from a
// WinRM (network logon) process, as on Windows, and installs from
// ConsoleSystem (an interactive logon, e.g. an elevated scheduled task);
// `<msu> /extract:<dir>` and `expand -F:* <msu> <dir>` write the .msu's
// Contents (by default <name>.cab, WSUSSCAN.cab, <name>-pkgProperties.txt
// and <name>.xml); DISM on an extracted .cab installs it as its .msu.
// WSUSSCAN.cab is not a package. sysprep: /oobe with /shutdown, /reboot or
// /quit, optional /generalize, /quiet, /mode:vm, /unattend:<file>; it fails
// (exit 1, setupact.log and setuperr.log) while a reboot is pending and,
// with /generalize, while an Appx package is installed for a user but not
// provisioned (appx.go: the Appx provider's lines, one package per run, the
// image state unchanged); otherwise, after
// PowerOptions.SysprepTime, it generalizes (Generalized, ImageState),
// keeps the /unattend answer file for the next boot's Setup passes
// (SysprepAnswerFile in the state directory) and shuts down or restarts
// the machine under the running command, which
// never returns, as over WinRM.
//
// Every boot advances pending packages; the boot that completes the last
// one clears the pending keys, during the boot or, with
// PowerOptions.KeysClearDelay, that long after WinRM is back (keys that
// clear asynchronously).
//
// # Power
//
// The machine's power state goes Up → ShutdownPending → ServicingOnShutdown
// → Off → Booting → [WinRMEarly →] Up, with durations from PowerOptions and
// the listener set at each step:
//
//	Up, ShutdownPending, WinRMEarly  ListenerUp (commands are answered)
//	ServicingOnShutdown              ListenerDropFIN or ListenerDropRST (PowerOptions.Drop),
//	                                 then DiscardShells; running processes are killed
//	Off                              ListenerRefused or ListenerBlackhole (PowerOptions.Off)
//	Booting                          ListenerRefused or ListenerUnavailable (PowerOptions.Boot);
//	                                 new boot time, pending servicing advances
//	WinRMEarly                       ListenerUp; CreateFault returns 0x800703FA with
//	                                 PowerOptions.EarlyCreateFault
//
// shutdown.exe behaves as Packer relies on: /r or /s with /t 0 starts the
// shutdown (exit 0, WinRM keeps answering for ShutdownDelay); /t N>0
// schedules it (N × PowerOptions.ShutdownSecond); while scheduled another
// request exits 1190, while in progress 1115 ("A system shutdown is in
// progress.(1115)" on stderr); /a aborts a scheduled one (0) or exits
// 1116. A power-off (/s, /p, sysprep /shutdown, Power().PowerOff) ends in
// Off and stays there until PowerOn. Tests drive the machine with Reboot
// (Windows restarts now, by itself), Reset (hard reset from any state),
// PowerOn, and observe it with State, WaitState, WaitBoots, Boots,
// BootTime and Transitions. With a FakeClock every step happens inside
// Advance, in order; zero durations pass their state at once.
//
// # What a WinRM server should do with it
//
// Call m.Start for each Command request (a *wsman.CommandFault error is the
// SOAP fault to answer); call m.SetPowerControl(server) once; optionally
// consult CreateFault() (through an interface assertion) when a shell is
// created. PowerControl methods must not wait for running commands to
// finish: they are called while the machine changes state.
package winsim
