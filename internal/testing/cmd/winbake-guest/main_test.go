package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
)

// buildGuest builds the command as the next stage ships it: a static
// binary (CGO_ENABLED=0).
func buildGuest(t *testing.T) string {
	t.Helper()
	// go test puts its own GOROOT/bin first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "winbake-guest")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s is dynamically linked (%v)", bin, p.Type)
		}
	}
	return bin
}

// guestProc is a running winbake-guest.
type guestProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	lines  []string
	done   chan struct{} // stderr fully read
	exited chan struct{}
	err    error
}

var listeningRE = regexp.MustCompile(`listening on http://(\S+)$`)

func startGuest(t *testing.T, bin string, args ...string) *guestProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &guestProc{t: t, cmd: cmd, done: make(chan struct{}), exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(g.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			g.mu.Lock()
			g.lines = append(g.lines, line)
			g.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		// Never leave the process behind, whatever the test did.
		select {
		case <-g.exited:
		default:
			_ = cmd.Process.Kill()
			<-g.exited
		}
		if t.Failed() {
			t.Logf("winbake-guest stderr:\n%s", strings.Join(g.log(), "\n"))
		}
	})
	go func() {
		<-g.done
		g.err = cmd.Wait()
		close(g.exited)
	}()
	select {
	case g.addr = <-addr:
	case <-g.exited:
		t.Fatalf("winbake-guest exited at start: %v\n%s", g.err, strings.Join(g.log(), "\n"))
	case <-time.After(20 * time.Second):
		t.Fatalf("winbake-guest never said where it listens:\n%s", strings.Join(g.log(), "\n"))
	}
	return g
}

func (g *guestProc) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.lines...)
}

// stop signals the process and wants exit status 0.
func (g *guestProc) stop(sig os.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatal(err)
	}
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		g.t.Fatalf("winbake-guest still running 20 s after %v", sig)
	}
	if g.err != nil {
		g.t.Errorf("winbake-guest after %v: %v", sig, g.err)
	}
	if g.cmd.ProcessState.ExitCode() != 0 {
		g.t.Errorf("exit status %d after %v", g.cmd.ProcessState.ExitCode(), sig)
	}
	log := strings.Join(g.log(), "\n")
	if !strings.HasSuffix(log, "stopped") || strings.Contains(log, "unsupported:") {
		g.t.Errorf("log does not end cleanly:\n%s", log)
	}
	// Nothing listens any more.
	if c, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
		c.Close()
		g.t.Errorf("%s still accepts connections after exit", g.addr)
	}
}

func (g *guestProc) client(user, password string) *winrm.Client {
	g.t.Helper()
	h, p, err := net.SplitHostPort(g.addr)
	if err != nil {
		g.t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: h, Port: port, Timeout: 10 * time.Second}, user, password, winrm.NewParameters("PT5S", "en-US", 153600))
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func run(t *testing.T, c *winrm.Client, line string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, errOut, code, err := c.RunCmdWithContext(ctx, line)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return out, errOut, code
}

func agentDoc(t *testing.T, stdout string, doc any) {
	t.Helper()
	if err := json.Unmarshal([]byte(stdout), doc); err != nil {
		t.Fatalf("agent output %q: %v", stdout, err)
	}
}

func TestGuestBinary(t *testing.T) {
	bin := buildGuest(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	catalog := filepath.Join(dir, "catalog.json")
	const lcu = "windows10.0-kb5040000-x64.cab"
	if err := os.WriteFile(catalog, []byte(`{"packages": [
		{"file": "`+lcu+`", "result": "reboot_required", "ubr": 5200},
		{"file": "windows10.0-kb5000001-x64.cab", "result": "not_applicable"}
	]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-listen", "127.0.0.1:0", "-state-dir", state, "-user", "packer", "-password", "s3cret",
		"-computer-name", "GUEST-BIN", "-windows", "2019", "-catalog", catalog, "-strict",
		"-shutdown-delay", "50ms", "-shutdown-time", "50ms", "-off-time", "50ms", "-boot-time", "100ms",
	}

	g := startGuest(t, bin, args...)
	c := g.client("packer", "s3cret")
	if out, _, _ := run(t, c, "hostname & ver"); out != "GUEST-BIN\r\n\r\nMicrosoft Windows [Version 10.0.17763.5122]\r\n" {
		t.Errorf("hostname & ver: %q", out)
	}
	if _, _, code := run(t, c, `mkdir C:\updates && echo MSCF> C:\updates\`+lcu); code != 0 {
		t.Fatalf("writing the package: exit %d", code)
	}
	out, _, code := run(t, c, testguest.AgentPath+` install C:\updates\`+lcu)
	var res agent.InstallResult
	agentDoc(t, out, &res)
	if code != 0 || res.Result != agent.InstalledRebootRequired || res.ExitCode != 3010 {
		t.Errorf("install: exit %d, %+v", code, res)
	}
	var bt agent.BootTimeResult
	out, _, _ = run(t, c, testguest.AgentPath+" boot-time")
	agentDoc(t, out, &bt)
	// A wrong password is refused.
	bad := g.client("packer", "vagrant")
	if _, _, _, err := bad.RunCmdWithContext(context.Background(), "echo x"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
	g.stop(syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(state, "state.json")); err != nil {
		t.Errorf("no state on disk: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(state, "*.tmp")); len(m) != 0 {
		t.Errorf("leftover files %v", m)
	}

	// Started again on its disk: a new boot, the pending package done,
	// the files and the computer name kept (the flags for a new machine
	// no longer apply).
	for i := range args {
		switch args[i] {
		case "2019":
			args[i] = "2022"
		case "GUEST-BIN":
			args[i] = "OTHER-NAME"
		}
	}
	g = startGuest(t, bin, args...)
	c = g.client("packer", "s3cret")
	var bt2 agent.BootTimeResult
	out, _, _ = run(t, c, testguest.AgentPath+" boot-time")
	agentDoc(t, out, &bt2)
	if !bt2.BootTime.After(bt.BootTime) {
		t.Errorf("boot time %v, before %v", bt2.BootTime, bt.BootTime)
	}
	var pr agent.PendingRebootResult
	out, _, _ = run(t, c, testguest.AgentPath+" pending-reboot")
	agentDoc(t, out, &pr)
	if pr.Pending {
		t.Errorf("still pending after a boot: %+v", pr)
	}
	if out, _, _ := run(t, c, `hostname & ver & type C:\updates\`+lcu); out != "GUEST-BIN\r\n\r\nMicrosoft Windows [Version 10.0.17763.5200]\r\nMSCF\r\n" {
		t.Errorf("after the restart: %q", out)
	}
	g.stop(os.Interrupt)
}

func TestGuestBinaryBadFlags(t *testing.T) {
	dir := t.TempDir()
	catalog := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catalog, []byte(`{"packages": [{"file": "a.cab", "result": "installs", "reboots": 2}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-state-dir is required"},
		{[]string{"-state-dir", dir, "-catalog", catalog}, `unknown field "reboots"`},
		{[]string{"-state-dir", dir, "-windows", "2012"}, `"2012" is neither a JSON object nor one of`},
		{[]string{"-state-dir", dir, "-drop", "reset"}, `-drop: "reset" is not one of`},
		{[]string{"-state-dir", dir, "extra"}, "unexpected arguments"},
	} {
		var stderr bytes.Buffer
		if code := runMain(tc.args, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	// The address is taken: the guest cannot start.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stderr bytes.Buffer
	if code := runMain([]string{"-state-dir", filepath.Join(dir, "s"), "-listen", l.Addr().String()}, &stderr); code != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("address in use: exit %d, %q", code, stderr.String())
	}
}

// runMain runs the command in-process (it returns before serving only on
// errors).
func runMain(args []string, stderr io.Writer) int {
	done := make(chan int, 1)
	go func() { done <- runGuest(args, stderr) }()
	select {
	case code := <-done:
		return code
	case <-time.After(10 * time.Second):
		return -1
	}
}
