package guestcmd

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"
	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// guarded is Packer's own WinRM communicator on the stand-in guest, its
// client going through a Transport, wrapped in a Guard: what the builders
// put into the state.
func guarded(t *testing.T, g *testguest.Guest, responseTimeout time.Duration) (*Guard, *Transport) {
	t.Helper()
	tr := NewTransport()
	if responseTimeout > 0 {
		tr.ResponseTimeout = responseTimeout
	}
	host, port := g.HostPort()
	user, pass := g.Credentials()
	c, err := sdkwinrm.New(&sdkwinrm.Config{Host: host, Port: port, Username: user, Password: pass,
		Timeout: time.Minute, TransportDecorator: tr.Decorator(false)})
	if err != nil {
		t.Fatal(err)
	}
	return NewGuard(c, tr), tr
}

// within fails the test when f has not returned after d: a hang is the
// fault these tests look for, and must not hang the suite.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s still blocked after %s", what, d)
		panic("unreachable")
	}
}

type outcome struct {
	r   Result
	err error
}

// A guest that stops answering mid-command (every Receive blackholed):
// Run gives up at the command's bound, the WinRM client is made to signal
// the command and delete its shell, and no shell stays open on the guest.
func TestRunBoundsABlackholedCommand(t *testing.T) {
	t.Parallel()
	g := testguest.StartForTest(t, testguest.Options{QuietModuleLoad: true})
	comm, _ := guarded(t, g, 0)
	g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole, Times: -1})
	o := within(t, 2*time.Minute, "Run", func() outcome {
		r, err := Run(context.Background(), comm, Command{Line: winrm.Powershell("Start-Sleep 600"), What: "sleeper", Timeout: time.Second, Limit: "test bound"})
		return outcome{r, err}
	})
	var te *TimeoutError
	if !errors.As(o.err, &te) || te.What != "sleeper" || !strings.Contains(o.err.Error(), "did not finish within 1s (test bound)") {
		t.Fatalf("err %v, want the TimeoutError of sleeper", o.err)
	}
	if n := g.Server.ShellCount(); n != 0 {
		t.Errorf("%d shell(s) left open on the guest after the command was given up", n)
	}
	if g.Server.RequestCount(wsman.OpSignal) == 0 || g.Server.RequestCount(wsman.OpDelete) == 0 {
		t.Errorf("the abandoned command was not signalled (%d) and its shell deleted (%d)",
			g.Server.RequestCount(wsman.OpSignal), g.Server.RequestCount(wsman.OpDelete))
	}
	if comm.InFlight() != 0 {
		t.Errorf("%d command(s) still in flight", comm.InFlight())
	}
	// The guest is usable again.
	g.Server.ClearInjections()
	r, err := Run(context.Background(), comm, Command{Line: "echo next", What: "echo", Timeout: time.Minute})
	if err != nil || r.Stdout != "next\r\n" {
		t.Errorf("next command: %q %v", r.Stdout, err)
	}
}

// Ctrl-C (the context cancelled) while a command runs and the guest has
// stopped answering its Receives: Run returns with the cancellation, the
// command is signalled and its shell deleted.
func TestRunCancelledDeletesTheShell(t *testing.T) {
	t.Parallel()
	g := testguest.StartForTest(t, testguest.Options{QuietModuleLoad: true})
	comm, _ := guarded(t, g, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := &cancelOn{marker: "started", cancel: func() {
		g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole, Times: -1})
		cancel()
	}}
	o := within(t, 2*time.Minute, "Run", func() outcome {
		r, err := Run(ctx, comm, Command{Line: winrm.Powershell("Write-Output started; Start-Sleep 600"), What: "sleeper",
			Timeout: time.Hour, Stdout: started})
		return outcome{r, err}
	})
	if !errors.Is(o.err, context.Canceled) || !strings.Contains(o.err.Error(), "sleeper") {
		t.Fatalf("err %v, want the cancellation naming the command", o.err)
	}
	if o.r.Stdout != "started\r\n" {
		t.Errorf("output so far %q", o.r.Stdout)
	}
	if n := g.Server.ShellCount(); n != 0 {
		t.Errorf("%d shell(s) left open after Ctrl-C", n)
	}
}

// cancelOn calls cancel once its marker was written.
type cancelOn struct {
	mu     sync.Mutex
	seen   strings.Builder
	marker string
	cancel func()
	done   bool
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Write(p)
	if !c.done && strings.Contains(c.seen.String(), c.marker) {
		c.done = true
		c.cancel()
	}
	return len(p), nil
}

// The provisioner's side gives up on a blackholed command at its bound even
// though its communicator ignores contexts; the command keeps its shell
// until the builder, which owns the WinRM client, aborts it as the build
// ends.
func TestProvisionerGivesUpAndBuilderAborts(t *testing.T) {
	t.Parallel()
	g := testguest.StartForTest(t, testguest.Options{QuietModuleLoad: true})
	comm, _ := guarded(t, g, 0)
	g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole, Times: -1})
	prov := rpcOnly{comm}
	o := within(t, time.Minute, "Run", func() outcome {
		r, err := Run(context.Background(), prov, Command{Line: winrm.Powershell("Start-Sleep 600"), What: "winbake-agent install", Timeout: time.Second})
		return outcome{r, err}
	})
	if !IsTimeout(o.err) {
		t.Fatalf("err %v, want a TimeoutError", o.err)
	}
	if comm.InFlight() != 1 || g.Server.ShellCount() != 1 {
		t.Fatalf("after the provisioner gave up: %d command(s) in flight, %d shell(s); want the abandoned one", comm.InFlight(), g.Server.ShellCount())
	}
	// The builder's cleanup (StepConnectWinRM) aborts it.
	comm.Abort()
	if !within(t, time.Minute, "Settle", func() bool { return comm.Settle(time.Minute) }) {
		t.Fatal("the aborted command did not end")
	}
	if n := g.Server.ShellCount(); n != 0 {
		t.Errorf("%d shell(s) left open after the builder aborted", n)
	}
}

// rpcOnly is a communicator as a provisioner gets it over Packer's RPC:
// the context given to Start does not reach the WinRM client, and it
// cannot abort anything (no Aborter).
type rpcOnly struct{ g *Guard }

func (r rpcOnly) Upload(path string, in io.Reader, fi *os.FileInfo) error {
	return r.g.Upload(path, in, fi)
}
func (r rpcOnly) UploadDir(dst, src string, exclude []string) error {
	return r.g.UploadDir(dst, src, exclude)
}
func (r rpcOnly) Download(path string, w io.Writer) error { return r.g.Download(path, w) }
func (r rpcOnly) DownloadDir(src, dst string, exclude []string) error {
	return r.g.DownloadDir(src, dst, exclude)
}

func (r rpcOnly) Start(_ context.Context, cmd *packersdk.RemoteCmd) error {
	return r.g.Start(context.TODO(), cmd)
}

// A Receive unanswered past the response timeout is sent again (by
// masterzen/winrm, once the HTTP wait for it ends); the command's output
// arrives complete.
func TestResponseTimeoutResendsReceive(t *testing.T) {
	t.Parallel()
	g := testguest.StartForTest(t, testguest.Options{QuietModuleLoad: true})
	comm, _ := guarded(t, g, 500*time.Millisecond)
	g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole, Times: 2})
	o := within(t, time.Minute, "Run", func() outcome {
		r, err := Run(context.Background(), comm, Command{Line: winrm.Powershell("Write-Output one; exit 3"), What: "echo", Timeout: 30 * time.Second})
		return outcome{r, err}
	})
	if o.err != nil || o.r.ExitStatus != 3 || o.r.Stdout != "one\r\n" {
		t.Errorf("exit %d, output %q, err %v; want 3 and one line", o.r.ExitStatus, o.r.Stdout, o.err)
	}
	if g.Server.RequestCount(wsman.OpReceive) < 3 {
		t.Errorf("%d Receive requests, want the two lost ones sent again", g.Server.RequestCount(wsman.OpReceive))
	}
}

// Run refuses a command without a bound.
func TestRunNeedsABound(t *testing.T) {
	if _, err := Run(context.Background(), nil, Command{Line: "x", What: "x"}); err == nil || !strings.Contains(err.Error(), "no bound") {
		t.Fatalf("err %v", err)
	}
}

// noExitComm fails Start as Packer's RPC proxy does when the command's
// connection dropped (a guest restarting): an error, and no exit status
// ever set on the RemoteCmd.
type noExitComm struct{ rpcOnly }

func (noExitComm) Start(context.Context, *packersdk.RemoteCmd) error {
	return errors.New("unknown error Post \"http://127.0.0.1:2765/wsman\": EOF")
}

// A command whose start fails returns that error at once, without waiting
// for an exit status that never comes.
func TestRunStartErrorWithoutExitStatus(t *testing.T) {
	o := within(t, time.Minute, "Run", func() outcome {
		r, err := Run(context.Background(), noExitComm{}, Command{Line: "x", What: "winbake-agent restart", Timeout: time.Hour})
		return outcome{r, err}
	})
	if o.err == nil || !strings.Contains(o.err.Error(), "winbake-agent restart: unknown error") || o.r.ExitStatus != -1 {
		t.Errorf("err %v, exit %d; want the start error and no exit status", o.err, o.r.ExitStatus)
	}
}
