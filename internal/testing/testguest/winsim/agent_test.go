package winsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// fakeAgent stands for agent.Main: it records its arguments and input and
// drives the System it gets.
type fakeAgent struct {
	mu    sync.Mutex
	calls [][]string
	stdin []string
}

func (a *fakeAgent) Main(ctx context.Context, sys agent.System, args []string, stdin io.Reader, stdout, stderr io.Writer) uint32 {
	in, _ := io.ReadAll(stdin)
	a.mu.Lock()
	a.calls = append(a.calls, args)
	a.stdin = append(a.stdin, string(in))
	a.mu.Unlock()
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: winbake-agent <verb>")
		return 2
	}
	switch args[0] {
	case "install":
		var out strings.Builder
		code, err := sys.Processes().Run(ctx, `C:\Windows\System32\dism.exe`,
			[]string{"/Online", "/Add-Package", "/PackagePath:" + args[1], "/NoRestart", "/Quiet"}, &out, &out)
		pending, _ := sys.Registry().KeyExists(RebootPendingKey)
		_ = json.NewEncoder(stdout).Encode(map[string]any{"exit": code, "err": fmt.Sprint(err), "pending": pending})
		return 0
	case "boot":
		bt, _ := sys.Power().BootTime()
		fmt.Fprintln(stdout, bt.UTC().Format(time.RFC3339Nano))
		return 0
	case "restart":
		if err := sys.Power().Restart(0, "winbake-agent"); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "write":
		w, err := sys.Files().Create(args[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		_, _ = io.WriteString(w, args[2])
		w.Close()
		return 0
	}
	return 3
}

func TestAgentInvocation(t *testing.T) {
	fa := &fakeAgent{}
	m := newMachine(t, Options{Agent: fa.Main, Drives: []string{"E"}, Packages: []Package{{FileName: "kb7-reboot.cab", Result: InstallsRebootRequired}}})
	for _, p := range []string{`C:\ProgramData\winbake\winbake-agent.exe`, `E:\winbake-agent.exe`} {
		if err := m.FS().WriteFile(p, []byte("MZ")); err != nil {
			t.Fatal(err)
		}
	}
	putPackages(t, m, "kb7-reboot.cab")

	// cmd.exe, Packer-style quoting: the agent gets the arguments parsed.
	r := run(t, m, `C:\ProgramData\winbake\winbake-agent.exe write "C:\Program Files\x\a b.txt" "say \"hi\""`)
	expect(t, r, 0, "", "")
	if got, _ := m.FS().ReadFile(`C:\Program Files\x\a b.txt`); string(got) != `say "hi"` {
		t.Errorf("agent wrote %q", got)
	}
	r = run(t, m, `E:\winbake-agent.exe install C:\updates\kb7-reboot.cab`)
	expect(t, r, 0, "{\"err\":\"\\u003cnil\\u003e\",\"exit\":3010,\"pending\":true}\n", "")

	// PowerShell's call operator, and the exit code through $LASTEXITCODE.
	r = run(t, m, winrm.Powershell(`& "C:\ProgramData\winbake\winbake-agent.exe" frob "a b" ''; exit $LASTEXITCODE`))
	expect(t, r, 3, "", "")
	r = run(t, m, winrm.Powershell(`E:\winbake-agent.exe`))
	expect(t, r, 1, "", "usage: winbake-agent <verb>\n")

	// stdin from WinRM Send.
	p, err := m.Start(context.Background(), wsman.CommandRequest{Command: `C:\ProgramData\winbake\winbake-agent.exe boot`, User: "vagrant"})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Stdin().Write([]byte(`{"request":1}`))
	p.Stdin().Close()
	out := readAll(t, p.Stdout())
	if code := p.Wait(); code != 0 || out != m.BootTime().UTC().Format(time.RFC3339Nano)+"\n" {
		t.Errorf("boot: exit %d, %q", code, out)
	}

	want := [][]string{
		{"write", `C:\Program Files\x\a b.txt`, `say "hi"`},
		{"install", `C:\updates\kb7-reboot.cab`},
		{"frob", "a b"},
		nil,
		{"boot"},
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.calls) != len(want) {
		t.Fatalf("calls %q", fa.calls)
	}
	for i := range want {
		if len(want[i]) == 0 && len(fa.calls[i]) == 0 {
			continue
		}
		if !reflect.DeepEqual(fa.calls[i], want[i]) {
			t.Errorf("call %d: %q, want %q", i, fa.calls[i], want[i])
		}
	}
	if fa.stdin[4] != `{"request":1}` {
		t.Errorf("stdin %q", fa.stdin[4])
	}
}

func TestAgentRestartAndMissingAgent(t *testing.T) {
	fa := &fakeAgent{}
	f := &failures{}
	m := newMachine(t, Options{Agent: fa.Main, Failf: f.Failf, Power: PowerOptions{ShutdownDelay: time.Hour}})
	// Not installed yet: cmd does not find it.
	expect(t, run(t, m, `C:\ProgramData\winbake\winbake-agent.exe restart`), 9009,
		"", "'C:\\ProgramData\\winbake\\winbake-agent.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n")
	f.expectReported(t, "winbake-agent.exe")
	if err := m.FS().WriteFile(`C:\ProgramData\winbake\winbake-agent.exe`, []byte("MZ")); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, m, `C:\ProgramData\winbake\winbake-agent.exe restart`), 0, "", "")
	checkState(t, m, StateShutdownPending)
	expect(t, run(t, m, `C:\ProgramData\winbake\winbake-agent.exe restart`), 1, "", "A system shutdown is in progress.\n")
	// A copy elsewhere is not the agent.
	if err := m.FS().WriteFile(`C:\Temp\winbake-agent.exe`, []byte("MZ")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, m, `C:\Temp\winbake-agent.exe restart`); r.code != 9009 {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, `C:\Temp\winbake-agent.exe`)
}

func TestNoAgentConfigured(t *testing.T) {
	f := &failures{}
	m := newMachine(t, Options{Failf: f.Failf})
	if err := m.FS().WriteFile(`C:\ProgramData\winbake\winbake-agent.exe`, []byte("MZ")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, m, `C:\ProgramData\winbake\winbake-agent.exe version`); r.code != 1 {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "Options.Agent is nil")
}

// TestProgramSearch: cmd.exe looks in the working directory first,
// PowerShell only in PATH (a program next to you needs .\).
func TestProgramSearch(t *testing.T) {
	fa := &fakeAgent{}
	f := &failures{}
	m := newMachine(t, Options{Agent: fa.Main, Failf: f.Failf})
	if err := m.FS().WriteFile(`C:\ProgramData\winbake\winbake-agent.exe`, []byte("MZ")); err != nil {
		t.Fatal(err)
	}
	req := func(cmd string) wsman.CommandRequest {
		return wsman.CommandRequest{Command: cmd, WorkingDirectory: `C:\ProgramData\winbake`}
	}
	r, _ := start(t, m, req(`winbake-agent frob`))
	expect(t, r, 3, "", "")
	r, _ = start(t, m, req(winrm.Powershell(`.\winbake-agent.exe frob; exit $LASTEXITCODE`)))
	expect(t, r, 3, "", "")
	r, _ = start(t, m, req(winrm.Powershell(`winbake-agent.exe frob`)))
	if r.code != 1 || !strings.Contains(r.stderr, "winbake-agent.exe") {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "winbake-agent.exe")
}
