package winsim

import (
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

func TestCmdEcho(t *testing.T) {
	m := newMachine(t, Options{})
	// The pypsrp captures: `cmd.exe /c echo hi` and the stderr/exit-code one.
	r, err := start(t, m, wsman.CommandRequest{Command: "cmd.exe", Arguments: []string{"/c", "echo", "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, 0, "hi\r\n", "")
	r, _ = start(t, m, wsman.CommandRequest{Command: "cmd.exe", Arguments: []string{"/c echo out && echo err>&2 && exit 1"}})
	expect(t, r, 1, "out \r\n", "err \r\n")

	expect(t, run(t, m, "echo"), 0, "ECHO is on.\r\n", "")
	expect(t, run(t, m, "echo."), 0, "\r\n", "")
	expect(t, run(t, m, `echo "quoted" ^& caret`), 0, "\"quoted\" & caret\r\n", "")
	expect(t, run(t, m, "echo a & echo b"), 0, "a \r\nb\r\n", "")
	expect(t, run(t, m, "echo x 1>&2 2>&1"), 0, "", "x  \r\n")
	expect(t, run(t, m, "echo x 2>&1 1>&2"), 0, "x  \r\n", "")
	expect(t, run(t, m, "echo %USERNAME% %NOPE%"), 0, "vagrant %NOPE%\r\n", "")
}

func TestCmdRedirectionToFiles(t *testing.T) {
	m := newMachine(t, Options{})
	// winrmcp's chunk command appends "X \r\n" (with the space).
	expect(t, run(t, m, `echo QUJD >> "%TEMP%\winrmcp-1.tmp"`), 0, "", "")
	expect(t, run(t, m, `echo REVG >> "%TEMP%\winrmcp-1.tmp"`), 0, "", "")
	data, err := m.FS().ReadFile(`C:\Users\vagrant\AppData\Local\Temp\WINRMCP-1.TMP`)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "QUJD \r\nREVG \r\n" {
		t.Errorf("file = %q", data)
	}
	expect(t, run(t, m, `echo new> C:\Windows\Temp\x.txt`), 0, "", "")
	expect(t, run(t, m, `type C:\windows\temp\X.TXT`), 0, "new\r\n", "")
	expect(t, run(t, m, `echo y > C:\NoSuchDir\x.txt`), 1, "", "The system cannot find the path specified.\r\n")
	expect(t, run(t, m, `echo gone > nul`), 0, "", "")
	expect(t, run(t, m, `del C:\Windows\Temp\x.txt && type C:\Windows\Temp\x.txt`), 1, "", "The system cannot find the file specified.\r\n")
	// del of a missing file complains but leaves the errorlevel at 0.
	expect(t, run(t, m, `del /f /q C:\Windows\Temp\x.txt`), 0, "", "Could Not Find C:\\Windows\\Temp\\x.txt\r\n")
	expect(t, run(t, m, `mkdir C:\a\b\c && mkdir C:\A\B`), 1, "", "A subdirectory or file C:\\A\\B already exists.\r\n")
	if st, err := m.Files().Stat(`c:\A\b\C`); err != nil || !st.IsDir() {
		t.Errorf("Stat = %v, %v", st, err)
	}
}

func TestCmdOperatorsAndExit(t *testing.T) {
	m := newMachine(t, Options{})
	expect(t, run(t, m, "exit /b 3010"), 3010, "", "")
	expect(t, run(t, m, "exit 5 & echo not reached"), 5, "", "")
	expect(t, run(t, m, "exit -1"), 4294967295, "", "")
	// echo leaves the errorlevel of the failed type.
	expect(t, run(t, m, "type C:\\nope || echo fallback"), 1, "fallback\r\n", "The system cannot find the file specified.\r\n")
	expect(t, run(t, m, "echo a || echo b"), 0, "a \r\n", "")
	expect(t, run(t, m, "type C:\\nope && echo no"), 1, "", "The system cannot find the file specified.\r\n")
	expect(t, run(t, m, "type C:\\nope & echo yes"), 1, "yes\r\n", "The system cannot find the file specified.\r\n")
	expect(t, run(t, m, "hostname"), 0, "WIN-SIMULATED\r\n", "")
	expect(t, run(t, m, "C:\\Windows\\System32\\hostname.exe && exit /b 7"), 7, "WIN-SIMULATED\r\n", "")
	expect(t, run(t, m, "ver"), 0, "\r\nMicrosoft Windows [Version 10.0.20348.2700]\r\n", "")
	expect(t, run(t, m, "set FOO=bar& set FOO"), 0, "FOO=bar\r\n", "")
	expect(t, run(t, m, "set NOSUCHVAR"), 1, "", "Environment variable NOSUCHVAR not defined\r\n")
}

func TestCmdSetListsSortedEnvironment(t *testing.T) {
	m := newMachine(t, Options{ComputerName: "server2016"})
	r, err := start(t, m, wsman.CommandRequest{Command: "cmd.exe", Arguments: []string{"/c", "set"}, Environment: map[string]string{"env1": "var1"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\r\n"), "\r\n")
	for i := 1; i < len(lines); i++ {
		a, b := strings.SplitN(lines[i-1], "=", 2)[0], strings.SplitN(lines[i], "=", 2)[0]
		if strings.ToUpper(a) > strings.ToUpper(b) {
			t.Errorf("set output not sorted: %q before %q", a, b)
		}
	}
	for _, want := range []string{
		`COMPUTERNAME=SERVER2016`, `USERDOMAIN=SERVER2016`, `USERNAME=vagrant`, `USERPROFILE=C:\Users\vagrant`,
		`TEMP=C:\Users\vagrant\AppData\Local\Temp`, `APPDATA=C:\Users\vagrant\AppData\Roaming`, `env1=var1`,
		`PROMPT=$P$G`, `ComSpec=C:\Windows\system32\cmd.exe`,
	} {
		if !strings.Contains(r.stdout, "\r\n"+want+"\r\n") {
			t.Errorf("set output lacks %q:\n%s", want, r.stdout)
		}
	}
	// WINRS_NOPROFILE: no profile, TEMP is the system's.
	r, _ = start(t, m, wsman.CommandRequest{Command: "set", Arguments: []string{"T"}, NoProfile: true})
	expect(t, r, 0, "TEMP=C:\\Windows\\TEMP\r\nTMP=C:\\Windows\\TEMP\r\n", "")
}

func TestCmdLineLimits(t *testing.T) {
	m := newMachine(t, Options{})
	ok := "echo " + strings.Repeat("A", cmdMaxLine-len("echo "))
	expect(t, run(t, m, ok), 0, strings.Repeat("A", cmdMaxLine-5)+"\r\n", "")
	expect(t, run(t, m, ok+"A"), 1, "", "The command line is too long.\r\n")
	// Past CreateProcess's limit, the Command request itself faults.
	_, err := start(t, m, wsman.CommandRequest{Command: "echo " + strings.Repeat("A", 32767)})
	if f, ok := err.(*wsman.CommandFault); !ok || f.Code != 2147942606 {
		t.Errorf("err = %v, want fault 2147942606", err)
	}
}

func TestCmdCodepage(t *testing.T) {
	m := newMachine(t, Options{})
	r, _ := start(t, m, wsman.CommandRequest{Command: "echo héllo", Codepage: 65001})
	expect(t, r, 0, "héllo\r\n", "")
	r, _ = start(t, m, wsman.CommandRequest{Command: "echo héllo", Codepage: 437})
	expect(t, r, 0, "h\x82llo\r\n", "")
}

func TestCmdQuoteRule(t *testing.T) {
	m := newMachine(t, Options{})
	if err := m.FS().WriteFile(`C:\Program Files\winbake\tool.txt`, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Two quotes around an executable with a blank: kept.
	expect(t, run(t, m, `"C:\Windows\System32\HOSTNAME.EXE"`), 0, "WIN-SIMULATED\r\n", "")
	// Otherwise the first and the last quote go, and the well-known
	// breakage follows.
	f := &failures{}
	m2 := newMachine(t, Options{Failf: f.Failf})
	r := run(t, m2, `"C:\Program Files\winbake\tool.exe" "a b"`)
	expect(t, r, 9009, "", "'C:\\Program' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n")
	f.expectReported(t, `C:\\Program`)
	r = run(t, m2, `"C:\Windows\System32\HOSTNAME.EXE" "a b"`)
	expect(t, r, 9009, "", "'C:\\Windows\\System32\\HOSTNAME.EXE\" \"a' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n")
	f.take()
}

func TestCmdUnknownCommandIsReported(t *testing.T) {
	f := &failures{}
	m := newMachine(t, Options{Failf: f.Failf})
	expect(t, run(t, m, "frobnicate --now"), 9009, "", "'frobnicate' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n")
	f.expectReported(t, "frobnicate")
	expect(t, run(t, m, "for %i in (a) do echo %i"), 9009, "", "'for' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n")
	f.expectReported(t, "for")
	expect(t, run(t, m, "echo a | findstr a"), 255, "", "pipes are not modelled\r\n")
	f.expectReported(t, "pipes")
	if got := m.Unsupported(); len(got) != 3 {
		t.Errorf("Unsupported() = %q", got)
	}
}

func TestSkipCmdShell(t *testing.T) {
	m := newMachine(t, Options{})
	// As in the pypsrp capture: without cmd.exe, a bare name is not searched.
	_, err := start(t, m, wsman.CommandRequest{Command: "powershell.exe", Arguments: []string{"Write-Host", "hi"}, SkipCmdShell: true})
	if f, ok := err.(*wsman.CommandFault); !ok || f.Code != 2147942402 || f.Message != "The system cannot find the file specified." {
		t.Errorf("err = %v", err)
	}
	r, err := start(t, m, wsman.CommandRequest{Command: `C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe`, Arguments: []string{"Write-Host", "hi"}, SkipCmdShell: true})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, 0, "hi\n", "")
}

func TestWorkingDirectory(t *testing.T) {
	m := newMachine(t, Options{})
	r, err := start(t, m, wsman.CommandRequest{Command: "powershell.exe", Arguments: []string{"(pwd).Path"}, WorkingDirectory: `C:\Windows`})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, 0, "C:\\Windows\r\n", "")
	expect(t, run(t, m, "cd"), 0, "C:\\Users\\vagrant\r\n", "")
	_, err = start(t, m, wsman.CommandRequest{Command: "cd", WorkingDirectory: `C:\Nope`})
	if f, ok := err.(*wsman.CommandFault); !ok || f.Code != 2147942667 {
		t.Errorf("err = %v", err)
	}
}
