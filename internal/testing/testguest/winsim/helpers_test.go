package winsim

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// failures records what the stand-in reports as not understood, for the
// tests that provoke it on purpose.
type failures struct {
	mu   sync.Mutex
	msgs []string
}

func (f *failures) Failf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *failures) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.msgs
	f.msgs = nil
	return m
}

// expectReported checks that exactly one unsupported report was made
// and that it mentions want.
func (f *failures) expectReported(t *testing.T, want string) {
	t.Helper()
	got := f.take()
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("reports = %q, want one mentioning %q", got, want)
	}
}

func newMachine(t *testing.T, opts Options) *Machine {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Failf == nil {
		opts.Failf = t.Errorf
	}
	if len(opts.Users) == 0 {
		opts.Users = []string{"vagrant"}
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

type result struct {
	stdout, stderr string
	code           uint32
}

// start runs a WinRM command through the Host interface and collects its
// output.
func start(t *testing.T, m *Machine, req wsman.CommandRequest) (result, error) {
	t.Helper()
	if req.User == "" {
		req.User = "vagrant"
	}
	if req.Codepage == 0 {
		req.Codepage = 65001
	}
	p, err := m.Start(context.Background(), req)
	if err != nil {
		return result{}, err
	}
	p.Stdin().Close()
	var out, errOut []byte
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); out, _ = io.ReadAll(p.Stdout()) }()
	go func() { defer wg.Done(); errOut, _ = io.ReadAll(p.Stderr()) }()
	done := make(chan uint32, 1)
	go func() { done <- p.Wait() }()
	select {
	case code := <-done:
		wg.Wait()
		return result{string(out), string(errOut), code}, nil
	case <-time.After(20 * time.Second):
		p.Terminate()
		t.Fatalf("command %q did not finish", req.Command)
		return result{}, nil
	}
}

// run runs a command line the way masterzen's RunWithContext sends it:
// the whole line as rsp:Command.
func run(t *testing.T, m *Machine, line string) result {
	t.Helper()
	r, err := start(t, m, wsman.CommandRequest{Command: line})
	if err != nil {
		t.Fatalf("Start(%q): %v", line, err)
	}
	return r
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

func expect(t *testing.T, r result, code uint32, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("got %v\nwant exit %d, stdout %q, stderr %q", r, code, stdout, stderr)
	}
}

// fakePower records the listener calls.
type fakePower struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakePower) SetListenerState(s wsman.ListenerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, listenerName(s))
}

func (f *fakePower) DiscardShells() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "discard")
}

func (f *fakePower) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func listenerName(s wsman.ListenerState) string {
	return map[wsman.ListenerState]string{
		wsman.ListenerUp: "up", wsman.ListenerDropFIN: "fin", wsman.ListenerDropRST: "rst",
		wsman.ListenerRefused: "refused", wsman.ListenerBlackhole: "blackhole", wsman.ListenerUnavailable: "503",
	}[s]
}

func states(ts []Transition) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.State.String())
	}
	return out
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
