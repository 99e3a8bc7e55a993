package winsim

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// Packer's commands, as its sources define them (packer-plugin-sdk
// communicator/step_connect_winrm.go, packer provisioner/windows-restart).
var (
	packerConnectCheck = winrm.Powershell(`if (Test-Path variable:global:ProgressPreference){$ProgressPreference='SilentlyContinue'}; echo "WinRM connected."`)
	packerRestartCheck = winrm.Powershell(`echo ("{0} restarted." -f [System.Net.Dns]::GetHostName())`)
	packerRegistryKeys = []string{
		"HKLM:SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending",
		"HKLM:SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\PackagesPending",
		"HKLM:Software\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootInProgress",
	}
)

func packerKeyCheck(key string) string { return winrm.Powershell(`Test-Path "` + key + `"`) }

func TestPowerShellPackerCommands(t *testing.T) {
	m := newMachine(t, Options{ComputerName: "vagrant-2022"})
	expect(t, run(t, m, packerConnectCheck), 0, "WinRM connected.\r\n", "")
	expect(t, run(t, m, packerRestartCheck), 0, "vagrant-2022 restarted.\r\n", "")
	for _, k := range packerRegistryKeys {
		expect(t, run(t, m, packerKeyCheck(k)), 0, "False\r\n", "")
	}
	if err := m.RegistryFor("vagrant").CreateKey(RebootPendingKey); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, m, packerKeyCheck(packerRegistryKeys[0])), 0, "True\r\n", "")
}

func TestPowerShellInvocationForms(t *testing.T) {
	m := newMachine(t, Options{})
	// The pypsrp captures: Write-Host ends with "\n"; stdin scripts.
	r, _ := start(t, m, wsman.CommandRequest{Command: "powershell.exe", Arguments: []string{"Write-Host", "こんにちは"}})
	expect(t, r, 0, "こんにちは\n", "")
	p, err := m.Start(ctxTimeout(t, 10*time.Second), wsman.CommandRequest{Command: "powershell.exe", Arguments: []string{"-"}, User: "vagrant", Codepage: 65001})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Stdin().Write([]byte(`Write-Host "output 1";`))
	_, _ = p.Stdin().Write([]byte(`Write-Host "output 2";`))
	p.Stdin().Close()
	out := readAll(t, p.Stdout())
	if code := p.Wait(); code != 0 || out != "output 1\noutput 2\n" {
		t.Errorf("stdin script: exit %d, stdout %q", code, out)
	}
	expect(t, run(t, m, `powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "Write-Output $env:USERNAME; exit 3010"`), 3010, "vagrant\r\n", "")
	expect(t, run(t, m, `powershell.exe -Command "echo 'it''s' \"$env:COMPUTERNAME\""`), 0, "it's\r\nWIN-SIMULATED\r\n", "")
	expect(t, run(t, m, `powershell.exe -c "$x = 'a'; $x + 'b'; hostname"`), 0, "ab\r\nWIN-SIMULATED\r\n", "")

	if err := m.FS().WriteFile(`C:\Windows\Temp\s.ps1`, []byte("\xef\xbb\xbfWrite-Output \"file\"\r\nexit 42\r\n")); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, m, `powershell -ExecutionPolicy Bypass -File C:\Windows\Temp\s.ps1`), 42, "file\r\n", "")
	expect(t, run(t, m, `powershell -File C:\Windows\Temp\missing.ps1`), psFileNotFoundExit, "",
		"The argument 'C:\\Windows\\Temp\\missing.ps1' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n")
}

func TestPowerShellSemantics(t *testing.T) {
	m := newMachine(t, Options{})
	ps := func(script string) result { return run(t, m, winrm.Powershell(script)) }
	expect(t, ps(`Write-Host -NoNewline a; Write-Host b c`), 0, "ab c\n", "")
	expect(t, ps(`Write-Output 1, 'two', $true, $null`), 0, "1\r\ntwo\r\nTrue\r\n", "")
	expect(t, ps(`(pwd).Path`), 0, "C:\\Users\\vagrant\r\n", "")
	expect(t, ps(`pwd`), 0, "\r\nPath\r\n----\r\nC:\\Users\\vagrant\r\n\r\n\r\n", "")
	expect(t, ps(`$env:TEMP`), 0, "C:\\Users\\vagrant\\AppData\\Local\\Temp\r\n", "")
	expect(t, ps(`$env:FOO = 'x'; "[$env:FOO]"; "$(1 + 2) items"`), 0, "[x]\r\n3 items\r\n", "")
	expect(t, ps(`if ($false) { 'a' } elseif (1 -eq 1) { 'b' } else { 'c' }`), 0, "b\r\n", "")
	expect(t, ps(`if (-not (Test-Path C:\Windows\System32\dism.exe -PathType Leaf)) { exit 1 }; exit 0`), 0, "", "")
	expect(t, ps(`Test-Path C:\Windows -PathType Leaf; Test-Path c:\windows -PathType Container; Test-Path env:PATH`), 0, "False\r\nTrue\r\nTrue\r\n", "")
	expect(t, ps(`exit`), 0, "", "")
	expect(t, ps(`exit -1`), 4294967295, "", "")
	// A script ending in a failed native command exits 1; an explicit
	// exit passes the code on.
	expect(t, ps(`C:\Windows\System32\shutdown.exe /a`), 1, "", "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n")
	expect(t, ps(`shutdown /a 2>$null; exit $LASTEXITCODE`), 1116, "", "")
	expect(t, ps(`$h = hostname; "[$h]"`), 0, "[WIN-SIMULATED]\r\n", "")
	expect(t, ps(`New-Item -ItemType Directory -Force -Path C:\x\y | Out-Null; Test-Path C:\X\Y`), 0, "True\r\n", "")

	start := time.Now()
	expect(t, ps(`Start-Sleep -Milliseconds 50; 'slept'`), 0, "slept\r\n", "")
	if time.Since(start) < 50*time.Millisecond {
		t.Errorf("Start-Sleep did not sleep")
	}
}

func TestPowerShellErrorsAsCLIXML(t *testing.T) {
	m := newMachine(t, Options{})
	// A non-terminating error as the last statement: CLIXML on stderr, exit 1.
	r := run(t, m, winrm.Powershell(`Remove-Item C:\nope.txt`))
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">Remove-Item : Cannot find path 'C:\\nope.txt' because it does not exist._x000D__x000A_</S>") ||
		!strings.HasSuffix(r.stderr, "</Objs>") || !strings.Contains(r.stderr, "PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand") {
		t.Errorf("got %v", r)
	}
	// Silenced, or followed by a successful statement: exit 0.
	expect(t, run(t, m, winrm.Powershell(`Remove-Item C:\nope.txt -ErrorAction SilentlyContinue; 'ok'`)), 0, "ok\r\n", "")
	r = run(t, m, winrm.Powershell(`throw "broken"; 'not reached'`))
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "<S S=\"Error\">broken_x000D__x000A_</S>") {
		t.Errorf("throw: %v", r)
	}
	r = run(t, m, winrm.Powershell(`[System.Convert]::FromBase64String("!!")`))
	if r.code != 1 || !strings.Contains(r.stderr, `Exception calling &#34;FromBase64String&#34;`) && !strings.Contains(r.stderr, `Exception calling "FromBase64String"`) {
		t.Errorf("method exception: %v", r)
	}
	// Without $ProgressPreference silenced, the first module command
	// writes the module-loading progress record.
	r = run(t, m, `powershell.exe -Command "Test-Path C:\Windows"`)
	if r.code != 0 || r.stdout != "True\r\n" || !strings.Contains(r.stderr, "Preparing modules for first use.") || !strings.HasSuffix(r.stderr, "</Objs>") {
		t.Errorf("progress: %v", r)
	}
	m2 := newMachine(t, Options{QuietModuleLoad: true})
	expect(t, run(t, m2, `powershell.exe -Command "Test-Path C:\Windows"`), 0, "True\r\n", "")
}

func TestPowerShellUnknownIsReported(t *testing.T) {
	f := &failures{}
	m := newMachine(t, Options{Failf: f.Failf})
	r := run(t, m, winrm.Powershell(`Get-WindowsUpdate -Install`))
	if r.code != 1 || !strings.Contains(r.stderr, "The term &#39;Get-WindowsUpdate&#39; is not recognized") && !strings.Contains(r.stderr, "The term 'Get-WindowsUpdate' is not recognized") {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "Get-WindowsUpdate")
	r = run(t, m, winrm.Powershell(`foreach ($x in 1,2) { $x }`))
	if r.code != 1 || !strings.HasPrefix(r.stderr, "#< CLIXML") {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "foreach")
	r = run(t, m, winrm.Powershell(`Test-Path C:\x -Credential $c`))
	if r.code != 1 {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "-credential")
	// Statements after an unsupported one do not run.
	r = run(t, m, winrm.Powershell(`'before'; Invoke-Thing; 'after'`))
	if r.code != 1 || r.stdout != "before\r\n" {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "Invoke-Thing")
}

func readAll(t *testing.T, r interface{ Read([]byte) (int, error) }) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestEncodedCommandLength: -EncodedCommand triples a script; past about
// 3 KB of script cmd.exe refuses the line, while the same script as a
// -File runs.
func TestEncodedCommandLength(t *testing.T) {
	m := newMachine(t, Options{})
	script := "'" + strings.Repeat("x", 3100) + "'"
	cmd := winrm.Powershell(script)
	if len(cmd) <= cmdMaxLine {
		t.Fatalf("command of %d characters", len(cmd))
	}
	expect(t, run(t, m, cmd), 1, "", "The command line is too long.\r\n")
	if err := m.FS().WriteFile(`C:\Windows\Temp\long.ps1`, []byte(script)); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, m, `powershell -NoProfile -File C:\Windows\Temp\long.ps1`), 0, strings.Repeat("x", 3100)+"\r\n", "")
	// Without cmd.exe, only CreateProcess's limit applies.
	r, err := start(t, m, wsman.CommandRequest{Command: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe` + cmd[len("powershell.exe"):], SkipCmdShell: true})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, 0, strings.Repeat("x", 3100)+"\r\n", "")
}

// TestPowerShellAutomaticVariables: the automatic variables of Windows
// PowerShell 5.1 on Windows Server 2022 have their values there.
func TestPowerShellAutomaticVariables(t *testing.T) {
	m := newMachine(t, Options{})
	ps := func(script string) result { return run(t, m, winrm.Powershell(script)) }
	// The version check scripts make before using 5.x features.
	expect(t, ps(`if ($PSVersionTable.PSVersion.Major -lt 5) { exit 1 }; exit 0`), 0, "", "")
	expect(t, ps(`"$($PSVersionTable.PSVersion)"; $PSVersionTable.PSVersion.Minor; $PSVersionTable.PSEdition; "$($PSVersionTable.BuildVersion)"`),
		0, "5.1.20348.2700\r\n1\r\nDesktop\r\n10.0.20348.2700\r\n", "")
	expect(t, ps(`"$($PSVersionTable.CLRVersion) $($PSVersionTable.WSManStackVersion) $($PSVersionTable.PSRemotingProtocolVersion) $($PSVersionTable.SerializationVersion)"`),
		0, "4.0.30319.42000 3.0 2.3 1.1.0.1\r\n", "")
	expect(t, ps(`"$($PSVersionTable.PSCompatibleVersions)"; $PSVersionTable.Count; $PSVersionTable.WSManStackVersion.Build`),
		0, "1.0 2.0 3.0 4.0 5.0 5.1.20348.2700\r\n8\r\n-1\r\n", "")
	expect(t, ps(`$Host.Name; "$($Host.Version)"`), 0, "ConsoleHost\r\n5.1.20348.2700\r\n", "")
	expect(t, ps(`$PSHOME; $HOME; $ShellId; "[$LASTEXITCODE]"; hostname | Out-Null; "[$LASTEXITCODE]"`), 0,
		"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\r\nC:\\Users\\vagrant\r\nMicrosoft.PowerShell\r\n[]\r\n[0]\r\n", "")
	expect(t, ps(`"$ErrorActionPreference $WarningPreference $VerbosePreference $DebugPreference $ConfirmPreference $WhatIfPreference"`), 0,
		"Continue Continue SilentlyContinue SilentlyContinue High False\r\n", "")
	// PowerShell 6+ variables are not defined in 5.1: $null, no error.
	expect(t, ps(`if ($IsWindows) { 'core' } elseif ($IsCoreCLR) { 'core' } else { 'desktop' }; "[$IsLinux]"`), 0, "desktop\r\n[]\r\n", "")

	// $PID is the process's: a number, another one in another process.
	pid := func() int64 {
		r := ps(`"$PID"`)
		n, err := strconv.ParseInt(strings.TrimSpace(r.stdout), 10, 64)
		if err != nil || r.code != 0 || n <= 0 {
			t.Fatalf("$PID: %v", r)
		}
		return n
	}
	if a, b := pid(), pid(); a == b {
		t.Errorf("two powershell.exe processes with $PID %d", a)
	}
	expect(t, ps(`if ($PID -gt 0) { 'positive' }`), 0, "positive\r\n", "")

	// The revision follows the installed Windows.
	m1366 := newMachine(t, Options{Windows: Windows{ProductName: "Windows Server 2022 Standard", EditionID: "ServerStandard", InstallationType: "Server", Build: 20348, UBR: 1366, DisplayVersion: "21H2"}})
	expect(t, run(t, m1366, winrm.Powershell(`"$($PSVersionTable.PSVersion)"`)), 0, "5.1.20348.1366\r\n", "")

	// A variable the script assigns somewhere is $null until it is set,
	// as without Set-StrictMode.
	expect(t, ps(`if ($false) { $x = 1 }; "[$x]"; $x = 2; "[$x]"`), 0, "[]\r\n[2]\r\n", "")
}

// TestPowerShellUnmodelledVariablesAreReported: a variable neither assigned
// by the script nor modelled is reported, as an unknown command is, never
// read as a silent $null.
func TestPowerShellUnmodelledVariablesAreReported(t *testing.T) {
	f := &failures{}
	m := newMachine(t, Options{Failf: f.Failf})
	ps := func(script string) result { return run(t, m, winrm.Powershell(script)) }
	for _, tc := range []struct{ script, report string }{
		{`'before'; $MyInvocation.MyCommand.Path; 'after'`, "$MyInvocation"},
		{`'before'; "root: $PSScriptRoot"; 'after'`, "$PSScriptRoot"},
		{`'before'; if ($Error.Count -gt 0) { exit 2 }; 'after'`, "$Error"},
		{`'before'; Write-Output $typo; 'after'`, "$typo"},
		// A Version is not compared as text (that would put 5.1 above 10.0).
		{`'before'; if ($PSVersionTable.PSVersion -ge '5.1') { 'new' }; 'after'`, "System.Version"},
		// Members the model lacks.
		{`'before'; $Host.UI.RawUI; 'after'`, "member UI"},
	} {
		r := ps(tc.script)
		if r.code != 1 || r.stdout != "before\r\n" || !strings.HasPrefix(r.stderr, "#< CLIXML") {
			t.Errorf("%s: %v", tc.script, r)
		}
		f.expectReported(t, tc.report)
	}
	// Objects whose host formatting (a table) is not modelled.
	r := ps(`$PSVersionTable; 'after'`)
	if r.code != 0 || r.stdout != "after\r\n" {
		t.Errorf("$PSVersionTable to the output: %v", r)
	}
	f.expectReported(t, "PSVersionHashTable")
}
