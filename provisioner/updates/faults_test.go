package updates

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// The faults of winbake-updates with the communicator as a provisioner
// really gets it: the builder's WinRM client (Packer's, through winbake's
// guestcmd.Transport, in a guestcmd.Guard) served over Packer's RPC, which
// passes no context and cannot abort. Each test checks the outcome and,
// after the builder's cleanup (StepConnectWinRM aborting what is still in
// flight), that no shell stays open on the guest and the package server
// is gone.

// rpcComm is the Guard as Packer's RPC proxy presents it to a provisioner
// (packer-plugin-sdk rpc/communicator.go): Start passes no context, and
// when the builder's Start fails the command gets no exit status.
type rpcComm struct {
	guard  *guestcmd.Guard
	before func(cmd string)
}

func (c *rpcComm) Start(_ context.Context, cmd *packersdk.RemoteCmd) error {
	if c.before != nil {
		c.before(cmd.Command)
	}
	served := &packersdk.RemoteCmd{Command: cmd.Command, Stdout: cmd.Stdout, Stderr: cmd.Stderr}
	if err := c.guard.Start(context.TODO(), served); err != nil {
		return err
	}
	go func() { cmd.SetExited(served.Wait()) }()
	return nil
}
func (c *rpcComm) Upload(p string, r io.Reader, fi *os.FileInfo) error {
	return c.guard.Upload(p, r, fi)
}
func (c *rpcComm) UploadDir(dst, src string, ex []string) error {
	return c.guard.UploadDir(dst, src, ex)
}
func (c *rpcComm) Download(p string, w io.Writer) error { return c.guard.Download(p, w) }
func (c *rpcComm) DownloadDir(src, dst string, ex []string) error {
	return c.guard.DownloadDir(src, dst, ex)
}

type faultEnv struct {
	g     *testguest.Guest
	guard *guestcmd.Guard
	comm  *rpcComm
	rec   *recorder
	dir   string
	ui    *recordingUi

	mu       sync.Mutex
	statuses map[wsman.Op]map[int]int // answers sent, by operation and HTTP status
}

func newFaultEnv(t *testing.T, power winsim.PowerOptions, responseTimeout time.Duration) *faultEnv {
	t.Helper()
	e := &faultEnv{rec: &recorder{t: t}, dir: t.TempDir(), statuses: map[wsman.Op]map[int]int{}}
	e.g = testguest.StartForTest(t, testguest.Options{Power: power, Logf: e.rec.logf, QuietModuleLoad: true,
		Server: wsman.Options{Trace: func(ex wsman.Exchange) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.statuses[ex.Op] == nil {
				e.statuses[ex.Op] = map[int]int{}
			}
			e.statuses[ex.Op][ex.Status]++
		}}})
	tr := guestcmd.NewTransport()
	tr.ResponseTimeout = responseTimeout
	h, p := e.g.HostPort()
	user, pass := e.g.Credentials()
	c, err := sdkwinrm.New(&sdkwinrm.Config{Host: h, Port: p, Username: user, Password: pass, Timeout: time.Minute,
		TransportDecorator: tr.Decorator(false)})
	if err != nil {
		t.Fatal(err)
	}
	e.guard = guestcmd.NewGuard(c, tr)
	e.comm = &rpcComm{guard: e.guard}
	return e
}

func (e *faultEnv) answers(op wsman.Op, status int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statuses[op][status]
}

// provision runs the provisioner under ctx and fails the test when it is
// still running after two minutes: a hang is the fault looked for.
func (e *faultEnv) provision(t *testing.T, ctx context.Context, raw map[string]any) (guestcontract.UpdatesRecord, error) {
	t.Helper()
	p := &Provisioner{poll: 100 * time.Millisecond}
	if err := p.Prepare(map[string]any{"restart_timeout": "1m", "servicing_timeout": "5s"}, raw); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	e.ui = &recordingUi{Ui: packersdk.TestUi(t)}
	done := make(chan error, 1)
	go func() {
		done <- p.Provision(ctx, e.ui, e.comm, map[string]any{"WinbakeHostIP": "127.0.0.1", "WinbakeHostBindIP": "127.0.0.1"})
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("winbake-updates still runs two minutes into the fault")
	}
	var m guestcontract.UpdatesRecord
	if b, rerr := e.g.Machine.FS().ReadFile(guestcontract.UpdatesRecordPath); rerr == nil {
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			t.Fatalf("manifest: %v\n%s", jerr, b)
		}
	}
	return m, err
}

// leftovers ends the build as the builder does (its StepConnectWinRM
// aborts the commands still in flight and waits for them) and reports
// what remains: shells open on the guest, commands in flight, a package
// server still accepting connections, packages or journals left in the
// guest directory after a build that went on.
func (e *faultEnv) leftovers(t *testing.T, buildWentOn bool) []string {
	t.Helper()
	e.guard.Abort()
	var left []string
	if !e.guard.Settle(time.Minute) {
		left = append(left, "commands still in flight a minute after the abort")
	}
	if n := e.g.Server.ShellCount(); n != 0 {
		left = append(left, "open WinRM shells on the guest: "+strconv.Itoa(n))
	}
	for _, l := range e.ui.lines {
		if m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(l); m != nil {
			if c, err := net.DialTimeout("tcp", m[1], time.Second); err == nil {
				c.Close()
				left = append(left, "the package server at "+m[1]+" still accepts connections")
			}
		}
	}
	if buildWentOn {
		if entries, err := e.g.Machine.FS().ReadDir(DefaultGuestDirectory); err == nil && len(entries) > 0 {
			var names []string
			for _, d := range entries {
				names = append(names, d.Name())
			}
			left = append(left, "left in "+DefaultGuestDirectory+": "+strings.Join(names, ", "))
		}
	}
	return left
}

// The guest stops answering the install's Receive (a connection that went
// dark): the builder's WinRM client gives up on that request after its
// response timeout and asks again, the install's result arrives, and the
// build goes on with the package installed once.
func TestBlackholedReceiveDuringInstall(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, fastPower(), 500*time.Millisecond)
	slow := pkgOther
	slow.Spec = winsim.PackageSpec{Result: "installs", InstallTime: "300ms"}
	writePackages(t, e.dir, slow)
	var once sync.Once
	e.comm.before = func(cmd string) {
		if strings.Contains(cmd, " install ") {
			once.Do(func() { e.g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole}) })
		}
	}
	m, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}})
	if err != nil {
		t.Fatal(err)
	}
	if e.g.Server.PendingInjections() != 0 {
		t.Fatal("the blackhole was never hit")
	}
	if p := byFile(m)[slow.Name]; p.Result != resultInstalled {
		t.Errorf("manifest %+v", p)
	}
	if runs := len(e.rec.dismRuns()); runs != 1 {
		t.Errorf("DISM ran %d times, want 1", runs)
	}
	for _, l := range e.leftovers(t, true) {
		t.Error(l)
	}
}

// Ctrl-C while the guest no longer answers the install's Receives:
// winbake-updates returns the cancellation at once although the
// communicator passes no context, and the builder's cleanup deletes the
// shell (the stand-in ends the install it ran).
func TestCtrlCDuringBlackholedInstall(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, fastPower(), guestcmd.DefaultResponseTimeout)
	long := pkgOther
	long.Spec = winsim.PackageSpec{Result: "installs", InstallTime: "10m"}
	writePackages(t, e.dir, long)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	e.comm.before = func(cmd string) {
		if strings.Contains(cmd, " install ") {
			once.Do(func() {
				e.g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole, Times: -1})
				go func() {
					// Ctrl-C once the install's Receive hangs.
					for e.g.Server.RequestCount(wsman.OpReceive) == 0 || e.guard.InFlight() == 0 {
						time.Sleep(20 * time.Millisecond)
					}
					time.Sleep(200 * time.Millisecond)
					cancel()
				}()
			})
		}
	}
	_, err := e.provision(t, ctx, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want the cancellation", err)
	}
	if e.guard.InFlight() != 1 {
		t.Errorf("%d command(s) in flight when winbake-updates returned, want the blackholed install", e.guard.InFlight())
	}
	for _, l := range e.leftovers(t, false) {
		t.Error(l)
	}
}

// Windows' Receive timeout fault (w:TimedOut, the long-poll ending without
// output) several times during the install: the output is complete and the
// install counted once.
func TestReceiveTimeoutFaultsDuringInstall(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, fastPower(), 30*time.Second)
	writePackages(t, e.dir, pkgOther)
	var once sync.Once
	e.comm.before = func(cmd string) {
		if strings.Contains(cmd, " install ") {
			once.Do(func() { e.g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectTimeout, Times: 3}) })
		}
	}
	m, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.answers(wsman.OpReceive, 500); got < 3 {
		t.Fatalf("%d Receive timeout faults sent, want 3", got)
	}
	if p := byFile(m)[pkgOther.Name]; p.Result != resultInstalled || len(e.rec.dismRuns()) != 1 {
		t.Errorf("manifest %+v, DISM runs %d", p, len(e.rec.dismRuns()))
	}
	for _, l := range e.leftovers(t, true) {
		t.Error(l)
	}
}

// WinRM answers 503 (HTTP.sys up, WinRM not yet) while the guest boots
// after the package's reboot: the provisioner keeps asking until the boot
// time changes and the build goes on.
func TestServiceUnavailableWhileBooting(t *testing.T) {
	t.Parallel()
	pw := fastPower()
	pw.Boot = wsman.ListenerUnavailable
	pw.BootTime = time.Second
	e := newFaultEnv(t, pw, 30*time.Second)
	reboots := pkgOther
	reboots.Spec = winsim.PackageSpec{Result: "reboot_required"}
	writePackages(t, e.dir, reboots)
	m, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}})
	if err != nil {
		t.Fatal(err)
	}
	if e.answers(wsman.OpUnknown, 503) == 0 { // HTTP.sys answers before WinRM reads the request
		t.Fatalf("the guest never answered 503 while booting: %v", e.statuses)
	}
	if p := byFile(m)[reboots.Name]; p.Result != resultInstalled || m.Reboots != 1 {
		t.Errorf("manifest %+v, reboots %d", p, m.Reboots)
	}
	for _, l := range e.leftovers(t, true) {
		t.Error(l)
	}
}

// The connection ends (FIN or RST) while the install still runs, not after
// it: the answer is lost, winbake-updates asks again, and the package ends
// up installed without a shell left open.
func TestConnectionDropsMidInstall(t *testing.T) {
	t.Parallel()
	for _, effect := range []wsman.Effect{wsman.EffectDropFIN, wsman.EffectDropRST} {
		t.Run(map[wsman.Effect]string{wsman.EffectDropFIN: "FIN", wsman.EffectDropRST: "RST"}[effect], func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t, fastPower(), 30*time.Second)
			slow := pkgOther
			slow.Spec = winsim.PackageSpec{Result: "installs", InstallTime: "1s"}
			writePackages(t, e.dir, slow)
			var once sync.Once
			e.comm.before = func(cmd string) {
				if strings.Contains(cmd, " install ") {
					once.Do(func() {
						e.g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: effect, Delay: 200 * time.Millisecond})
					})
				}
			}
			m, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}})
			if err != nil {
				t.Fatal(err)
			}
			if e.g.Server.PendingInjections() != 0 {
				t.Fatal("the drop was never injected")
			}
			if p := byFile(m)[slow.Name]; p.Result != resultInstalled {
				t.Errorf("manifest %+v", p)
			}
			if !e.ui.said("lost the answer of the install") {
				t.Errorf("the provisioner did not notice the lost answer: %q", e.ui.lines)
			}
			// masterzen/winrm signals the command to terminate when its
			// connection drops, which ends the install; the journal then
			// shows it unfinished and the agent runs it again.
			if runs := len(e.rec.dismRuns()); runs < 1 || runs > 2 {
				t.Errorf("DISM ran %d times, want once or, after the terminate signal, twice", runs)
			}
			for _, l := range e.leftovers(t, true) {
				t.Error(l)
			}
		})
	}
}

// DISM fails the package at every attempt (0x800F0922, installers
// failed): it is retried after a reboot, then the build fails naming it and
// pointing at defer_failed; the delivered package and the journals are
// removed from the guest.
func TestDISMFailureFailsTheBuildAndCleansUp(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, fastPower(), 30*time.Second)
	broken := pkgOther
	broken.Spec = winsim.PackageSpec{Result: "installs", Failures: 100}
	writePackages(t, e.dir, broken)
	m, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}, "retries": 1})
	if err == nil || !strings.Contains(err.Error(), broken.Name) || !strings.Contains(err.Error(), "defer_failed") {
		t.Fatalf("err %v, want the failed package named", err)
	}
	if p := byFile(m)[broken.Name]; p.Result != resultFailed || p.Attempts != 2 || p.ExitCode != winsim.ExitInstallersFailed {
		t.Errorf("manifest %+v, want failed after 2 attempts with 0x800F0922", p)
	}
	for _, l := range e.leftovers(t, true) {
		t.Error(l)
	}
}

// A package that keeps asking for reboots hits max_reboots: the build
// fails naming the cap and the package, and cleans up the guest.
func TestRebootCapFailsTheBuildAndCleansUp(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, fastPower(), 30*time.Second)
	stuck := pkgOther
	stuck.Spec = winsim.PackageSpec{Result: "installs", Failures: 100}
	writePackages(t, e.dir, stuck)
	_, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}, "max_reboots": 2, "retries": 10})
	if err == nil || !strings.Contains(err.Error(), "max_reboots (2)") || !strings.Contains(err.Error(), stuck.Name) {
		t.Fatalf("err %v, want max_reboots naming %s", err, stuck.Name)
	}
	for _, l := range e.leftovers(t, true) {
		t.Error(l)
	}
}

// The machine is reset while the install runs (power cut, a crash): the
// answer is lost, the guest boots again, and the install, which the reset
// cut off, runs again and completes.
func TestResetMidInstall(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, fastPower(), 30*time.Second)
	slow := pkgOther
	slow.Spec = winsim.PackageSpec{Result: "installs", InstallTime: "1s"}
	writePackages(t, e.dir, slow)
	var once sync.Once
	e.comm.before = func(cmd string) {
		if strings.Contains(cmd, " install ") {
			once.Do(func() {
				go func() { time.Sleep(300 * time.Millisecond); e.g.Machine.Reset() }()
			})
		}
	}
	m, err := e.provision(t, context.Background(), map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}})
	if err != nil {
		t.Fatal(err)
	}
	if p := byFile(m)[slow.Name]; p.Result != resultInstalled || m.RebootsObserved < 1 {
		t.Errorf("manifest %+v, reboots seen %d", p, m.RebootsObserved)
	}
	if runs := len(e.rec.dismRuns()); runs != 2 {
		t.Errorf("DISM ran %d times, want twice (cut off by the reset, then again)", runs)
	}
	for _, l := range e.leftovers(t, true) {
		t.Error(l)
	}
}
