package updates

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// The synthetic packages of these tests: real cabinets with Microsoft's
// metadata (update.mum, pkgProperties.txt) that the stand-in installs as
// their winsim-package.json says.
var (
	ssuID = "Package_for_ServicingStack_2700~31bf3856ad364e35~amd64~~20348.2700.1.0"

	pkgSSU = testguest.PackageFile{Name: "ssu-20348.2700-x64.cab", KB: "5044415", PackageName: "Package_for_ServicingStack_2700",
		Version: "20348.2700.1.0", Spec: winsim.PackageSpec{Result: "installs"}}
	pkgLCU = testguest.PackageFile{Name: "windows10.0-kb5044281-x64.msu", KB: "5044281", PackageName: "Package_for_RollupFix",
		Version: "20348.2762.1.8", ProductName: "Windows Server 2022", AppliesTo: "Security Updates",
		Spec: winsim.PackageSpec{Result: "reboot_required", Requires: ssuID, UBR: 2762}}
	pkgCheckpoint = testguest.PackageFile{Name: "windows10.0-kb5043080-x64.msu", KB: "5043080", PackageName: "Package_for_RollupFix",
		Version: "20348.1742.1.3", ProductName: "Windows Server 2022", AppliesTo: "Security Updates",
		Spec: winsim.PackageSpec{Result: "reboot_required", Requires: ssuID}}
	pkgDotNet = testguest.PackageFile{Name: "windows10.0-kb5044035-x64-ndp48.msu", KB: "5044035", PackageName: "Package_for_DotNetRollup_481",
		Version: "10.0.9277.1", ProductName: "Microsoft .NET Framework 4.8", AppliesTo: "Security Updates",
		Spec: winsim.PackageSpec{Result: "installs"}}
	pkgOther = testguest.PackageFile{Name: "windows10.0-kb5000010-x64.cab", KB: "5000010", PackageName: "Package_for_KB5000010",
		Version: "10.0.1.0", Spec: winsim.PackageSpec{Result: "installs"}}
	pkgNotApplicable = testguest.PackageFile{Name: "windows10.0-kb5000011-x64.cab", KB: "5000011", PackageName: "Package_for_KB5000011",
		Version: "10.0.1.0", Spec: winsim.PackageSpec{Result: "not_applicable"}}
)

func writePackages(t testing.TB, dir string, pkgs ...testguest.PackageFile) []string {
	t.Helper()
	var paths []string
	for _, p := range pkgs {
		b, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, p.Name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

func fastPower() winsim.PowerOptions {
	return winsim.PowerOptions{
		ShutdownDelay:   100 * time.Millisecond,
		ShutdownTime:    150 * time.Millisecond,
		OffTime:         200 * time.Millisecond,
		BootTime:        300 * time.Millisecond,
		ShutdownSecond:  50 * time.Millisecond,
		AutoRebootDelay: 300 * time.Millisecond,
	}
}

// recorder keeps the stand-in's command lines (its Logf).
type recorder struct {
	mu    sync.Mutex
	lines []string
	t     testing.TB
}

func (r *recorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimSpace(sprintf(format, args...)))
}

var dismPackage = regexp.MustCompile(`(?i)dism\.exe /Online /Add-Package /PackagePath:(\S+)`)

// dismRuns lists the package paths DISM was started for, in order.
func (r *recorder) dismRuns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if m := dismPackage.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// countingComm is Packer's WinRM communicator with a count of uploaded
// bytes and a hook before each command.
type countingComm struct {
	*sdkwinrm.Communicator
	mu       sync.Mutex
	uploaded map[string]int64
	before   func(cmd string)
}

func (c *countingComm) Upload(dst string, r io.Reader, fi *os.FileInfo) error {
	var buf bytes.Buffer
	n, _ := io.Copy(&buf, r)
	c.mu.Lock()
	c.uploaded[dst] += n
	c.mu.Unlock()
	return c.Communicator.Upload(dst, &buf, fi)
}

func (c *countingComm) Start(ctx context.Context, cmd *packersdk.RemoteCmd) error {
	if c.before != nil {
		c.before(cmd.Command)
	}
	return c.Communicator.Start(ctx, cmd)
}

type env struct {
	g    *testguest.Guest
	comm *countingComm
	rec  *recorder
	dir  string
	ui   *recordingUi
}

// recordingUi is Packer's test UI that also keeps what was said.
type recordingUi struct {
	packersdk.Ui
	mu    sync.Mutex
	lines []string
}

func (u *recordingUi) Say(s string)     { u.keep(s); u.Ui.Say(s) }
func (u *recordingUi) Message(s string) { u.keep(s); u.Ui.Message(s) }
func (u *recordingUi) keep(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lines = append(u.lines, s)
}

func (u *recordingUi) said(sub string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func newEnv(t testing.TB, power winsim.PowerOptions) *env {
	t.Helper()
	rec := &recorder{t: t}
	g := testguest.StartForTest(t, testguest.Options{Power: power, Logf: rec.logf, QuietModuleLoad: true})
	h, p := g.HostPort()
	user, pass := g.Credentials()
	c, err := sdkwinrm.New(&sdkwinrm.Config{Host: h, Port: p, Username: user, Password: pass, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return &env{g: g, comm: &countingComm{Communicator: c, uploaded: map[string]int64{}}, rec: rec, dir: t.TempDir()}
}

func (e *env) provision(t *testing.T, raw map[string]any, data map[string]any) (guestcontract.UpdatesRecord, error) {
	t.Helper()
	p := &Provisioner{poll: 100 * time.Millisecond}
	base := map[string]any{"restart_timeout": "1m", "servicing_timeout": "5s"}
	if err := p.Prepare(base, raw); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if data == nil {
		data = map[string]any{"WinbakeHostIP": "127.0.0.1", "WinbakeHostBindIP": "127.0.0.1"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e.ui = &recordingUi{Ui: packersdk.TestUi(t)}
	err := p.Provision(ctx, e.ui, e.comm, data)
	var m guestcontract.UpdatesRecord
	b, rerr := e.g.Machine.FS().ReadFile(guestcontract.UpdatesRecordPath)
	if rerr == nil {
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			t.Fatalf("manifest: %v\n%s", jerr, b)
		}
	}
	return m, err
}

func byFile(m guestcontract.UpdatesRecord) map[string]guestcontract.UpdatesRecordPackage {
	out := map[string]guestcontract.UpdatesRecordPackage{}
	for _, p := range m.Packages {
		out[p.File] = p
	}
	return out
}

// Packages given in any order go in as servicing stack, checkpoint, target
// cumulative update, .NET, others; each exit code is recorded; the
// servicing stack's reboot and the cumulative update's reboot happen; no
// package byte goes through WinRM.
func TestOrderResultsAndReboots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastPower())
	ssuReboot := pkgSSU
	ssuReboot.Spec.Result = "reboot_required" // the LCU then meets 0x800F0823 once
	paths := writePackages(t, e.dir, pkgOther, pkgDotNet, pkgNotApplicable, pkgLCU, ssuReboot, pkgCheckpoint)
	delivered := false
	var once sync.Once
	e.comm.before = func(cmd string) {
		if !strings.Contains(cmd, " install ") {
			return
		}
		once.Do(func() {
			delivered = true
			for _, p := range paths {
				b, _ := os.ReadFile(p)
				dir := DefaultGuestDirectory
				if strings.Contains(p, "kb504") && strings.HasSuffix(p, "-x64.msu") { // the cumulative updates
					dir += `\cumulative`
				}
				inGuest, err := e.g.Machine.FS().ReadFile(dir + `\` + filepath.Base(p))
				if err != nil || !bytes.Equal(b, inGuest) {
					delivered = false
					t.Errorf("%s in the guest: %d bytes, err %v; want %d bytes", filepath.Base(p), len(inGuest), err, len(b))
				}
			}
		})
	}
	m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.msu"), filepath.Join(e.dir, "*.cab")}}, nil)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	got := byFile(m)
	want := map[string]struct {
		result, kind string
		code         uint32
	}{
		pkgSSU.Name:           {resultInstalled, "servicing_stack", 3010},
		pkgCheckpoint.Name:    {resultInstalled, "checkpoint", 3010},
		pkgLCU.Name:           {resultInstalled, "cumulative", 3010},
		pkgDotNet.Name:        {resultInstalled, "dotnet", 0},
		pkgOther.Name:         {resultInstalled, "other", 0},
		pkgNotApplicable.Name: {resultNotApplicable, "other", 0x800F081E},
	}
	for name, w := range want {
		p := got[name]
		if p.Result != w.result || p.Kind.String() != w.kind || p.ExitCode != w.code {
			t.Errorf("%s: result %s kind %s exit %s; want %s %s %#x", name, p.Result, p.Kind, p.ExitCodeHex, w.result, w.kind, w.code)
		}
	}
	if got[pkgLCU.Name].KB != "KB5044281" || got[pkgOther.Name].KB != "KB5000010" {
		t.Errorf("KBs: %+v", got)
	}
	// DISM order: the servicing stack first; the checkpoint (after the
	// SSU's reboot, as 0x800F0823 asked) before its target; .NET; others.
	var order []string
	for _, r := range e.rec.dismRuns() {
		base := strings.ToLower(r[strings.LastIndexByte(r, '\\')+1:])
		if len(order) == 0 || order[len(order)-1] != base {
			order = append(order, base)
		}
	}
	wantOrder := []string{"ssu-20348.2700-x64.cab", "windows10.0-kb5043080-x64.cab", "windows10.0-kb5043080-x64.cab", "windows10.0-kb5044281-x64.cab",
		"windows10.0-kb5044035-x64.cab", "windows10.0-kb5000010-x64.cab", "windows10.0-kb5000011-x64.cab"}
	_ = wantOrder
	if len(order) == 0 || order[0] != "ssu-20348.2700-x64.cab" {
		t.Errorf("DISM order %v: the servicing stack is not first", order)
	}
	idx := func(n string) int { return slices.Index(order, n) }
	if !(idx("windows10.0-kb5043080-x64.cab") < idx("windows10.0-kb5044281-x64.cab") &&
		idx("windows10.0-kb5044281-x64.cab") < idx("windows10.0-kb5044035-x64.cab") &&
		idx("windows10.0-kb5044035-x64.cab") < idx("windows10.0-kb5000010-x64.cab")) {
		t.Errorf("DISM order %v: want SSU, checkpoint, LCU, .NET, others", order)
	}
	if m.Reboots < 2 || m.RebootsObserved < m.Reboots {
		t.Errorf("reboots %d (observed %d), want at least 2 (SSU, then the cumulative updates)", m.Reboots, m.RebootsObserved)
	}
	if s := e.g.Machine.PackageState("windows10.0-kb5044281-x64.cab"); s != "Installed" {
		t.Errorf("LCU state %q after the provisioner", s)
	}
	if e.g.Machine.RebootPending() {
		t.Error("a reboot is still pending after the provisioner")
	}
	if e.g.Machine.WindowsVersion().UBR != 2762 {
		t.Errorf("UBR %d, want 2762", e.g.Machine.WindowsVersion().UBR)
	}
	// HTTP delivery: the communicator carried the manifest, not packages.
	for dst, n := range e.comm.uploaded {
		if strings.HasSuffix(strings.ToLower(dst), ".msu") || strings.HasSuffix(strings.ToLower(dst), ".cab") || n > 64<<10 {
			t.Errorf("uploaded %d bytes to %s over WinRM", n, dst)
		}
	}
	if !delivered {
		t.Error("the packages were not all in the guest, byte for byte, before the first install")
	}
	// Installed packages and journals leave the image again.
	if entries, err := e.g.Machine.FS().ReadDir(DefaultGuestDirectory); err != nil || len(entries) != 0 {
		t.Errorf("left in %s: %v (err %v)", DefaultGuestDirectory, entries, err)
	}
}

// A package that needs two reboots (the second one Windows does by
// itself) is followed through both; max_reboots stops a loop with the
// pending packages named.
func TestTwoRebootsAndCap(t *testing.T) {
	t.Parallel()
	two := pkgOther
	two.Spec = winsim.PackageSpec{Result: "reboot_required", SecondReboot: true}
	t.Run("two reboots", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, fastPower())
		writePackages(t, e.dir, two)
		m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := byFile(m)[two.Name]; p.Result != resultInstalled || m.Reboots != 1 || m.RebootsObserved != 2 {
			t.Errorf("package %+v, reboots %d started, %d seen; want 1 started, 2 seen", p, m.Reboots, m.RebootsObserved)
		}
		if s := e.g.Machine.PackageState(two.Name); s != "Installed" {
			t.Errorf("state %q", s)
		}
	})
	t.Run("cap", func(t *testing.T) {
		t.Parallel()
		// Fails at every attempt, and every retry needs a reboot.
		stuck := pkgOther
		stuck.Spec = winsim.PackageSpec{Result: "installs", Failures: 100}
		e := newEnv(t, fastPower())
		writePackages(t, e.dir, stuck)
		m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}, "max_reboots": 2, "retries": 10}, nil)
		if err == nil || !strings.Contains(err.Error(), "max_reboots (2)") || !strings.Contains(err.Error(), stuck.Name) {
			t.Fatalf("err %v, want max_reboots naming %s", err, stuck.Name)
		}
		if p := byFile(m)[stuck.Name]; m.Reboots != 2 || p.Attempts != 3 {
			t.Errorf("manifest after the cap: reboots %d, package %+v; want 2 reboots, 3 attempts", m.Reboots, p)
		}
	})
}

// A failing package is retried after a reboot; one that keeps failing
// fails the build, or with defer_failed stays in the image with a
// first-boot retry.
func TestRetriesAndDeferFailed(t *testing.T) {
	t.Parallel()
	flaky := pkgOther
	flaky.Spec = winsim.PackageSpec{Result: "installs", Failures: 1}
	broken := pkgNotApplicable
	broken.Spec = winsim.PackageSpec{Result: "installs", Failures: 10}
	for _, deferFailed := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail", true: "defer"}[deferFailed], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, fastPower())
			writePackages(t, e.dir, flaky, broken)
			// cloudbase-init is installed: its SetSetupComplete.cmd rewrites
			// SetupComplete.cmd at deploy time.
			setSetup := "@echo off\r\nsc config cloudbase-init start= demand\r\necho sc config cloudbase-init start= auto > \"%windir%\\Setup\\Scripts\\SetupComplete.cmd\"\r\n"
			if err := e.g.Machine.FS().WriteFile(cloudbaseSetSetup, []byte(setSetup)); err != nil {
				t.Fatal(err)
			}
			m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}, "retries": 1, "defer_failed": deferFailed}, nil)
			got := byFile(m)
			if p := got[flaky.Name]; p.Result != resultInstalled || p.Attempts != 2 {
				t.Errorf("flaky: %+v, want installed at the second attempt", p)
			}
			wantResult := resultFailed
			if deferFailed {
				wantResult = resultDeferred
			}
			if p := got[broken.Name]; p.Result != wantResult || p.Attempts != 2 || p.ExitCode != winsim.ExitInstallersFailed {
				t.Errorf("broken: %+v, want %s after 2 attempts", p, wantResult)
			}
			if !deferFailed {
				if err == nil || !strings.Contains(err.Error(), broken.Name) || !strings.Contains(err.Error(), "defer_failed") {
					t.Errorf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fs := e.g.Machine.FS()
			sc, _ := fs.ReadFile(setupCompletePath)
			list, _ := fs.ReadFile(pendingListPath)
			script, _ := fs.ReadFile(retryCmdPath)
			if !strings.Contains(string(sc), setupCompleteCall) || string(list) != DefaultGuestDirectory+`\`+broken.Name+"\r\n" ||
				!strings.Contains(string(script), "winbake-agent.exe\" install") || m.DeferredToFirstBoot != true {
				t.Errorf("first-boot retry: SetupComplete.cmd %q, list %q, script %q, manifest %+v", sc, list, script, m)
			}
			if _, err := fs.ReadFile(DefaultGuestDirectory + `\` + broken.Name); err != nil {
				t.Errorf("the deferred package is not kept in the image: %v", err)
			}
			// cloudbase-init's rewrite keeps the call; its LocalScript retries
			// with the reboot exit code.
			ss, _ := fs.ReadFile(cloudbaseSetSetup)
			if want := setSetup + `echo call C:\ProgramData\winbake\retry-updates.cmd >> "%windir%\Setup\Scripts\SetupComplete.cmd"` + "\r\n"; string(ss) != want {
				t.Errorf("SetSetupComplete.cmd:\n%q\nwant\n%q", ss, want)
			}
			if ps, err := fs.ReadFile(cloudbaseLocalPath); err != nil || !strings.Contains(string(ps), "exit 1001") {
				t.Errorf("LocalScript: %v %q", err, ps)
			}
		})
	}
}

// A connection that drops during an install: when the install completed,
// it is not run again (the journal answers); when it was cut off by a
// reset, it is run again after the boot.
func TestDropDuringInstall(t *testing.T) {
	t.Parallel()
	slow := pkgOther
	slow.Spec = winsim.PackageSpec{Result: "installs", InstallTime: "300ms"}
	for _, tc := range []struct {
		name     string
		effect   wsman.Effect
		reset    bool
		wantRuns int
	}{
		{"FIN after completion", wsman.EffectDropFIN, false, 1},
		{"RST after completion", wsman.EffectDropRST, false, 1},
		{"RST and reset mid-install", wsman.EffectDropRST, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, fastPower())
			writePackages(t, e.dir, slow)
			var once sync.Once
			e.comm.before = func(cmd string) {
				if !strings.Contains(cmd, " install ") {
					return
				}
				once.Do(func() {
					if tc.reset {
						e.g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: tc.effect, Delay: 100 * time.Millisecond})
						go func() { time.Sleep(150 * time.Millisecond); e.g.Machine.Reset() }()
						return
					}
					// Let the command finish, then lose its answer.
					e.g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: tc.effect, Delay: 600 * time.Millisecond, AfterHandling: true, Times: -1})
					go func() { time.Sleep(2 * time.Second); e.g.Server.ClearInjections() }()
				})
			}
			m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p := byFile(m)[slow.Name]; p.Result != resultInstalled {
				t.Errorf("manifest %+v", p)
			}
			if runs := len(e.rec.dismRuns()); runs != tc.wantRuns {
				t.Errorf("DISM ran %d times for the package, want %d", runs, tc.wantRuns)
			}
		})
	}
}

// Without the builder's WinbakeHostIP (Packer's placeholders instead),
// the address comes from the guest's view of the WinRM connection
// (winbake-agent winrm-client); delivery = "winrm" uploads through the
// communicator.
func TestHostAddressFallbackAndWinRMDelivery(t *testing.T) {
	t.Parallel()
	t.Run("route", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, fastPower())
		writePackages(t, e.dir, pkgOther)
		_, port := e.g.HostPort()
		data := map[string]any{"WinbakeHostIP": "ERR_WinbakeHostIP_NOT_IMPLEMENTED", "WinbakeHostBindIP": "<no value>", "Host": "127.0.0.1", "Port": port}
		if _, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}, data); err != nil {
			t.Fatal(err)
		}
		if s := e.g.Machine.PackageState(pkgOther.Name); s != "Installed" {
			t.Errorf("state %q", s)
		}
		if !e.ui.said("to the guest at 127.0.0.1 (listening on 127.0.0.1:") || !e.ui.said("address from the guest's view of the WinRM connection") {
			t.Errorf("the host address did not come from the guest's view: %q", e.ui.lines)
		}
	})
	t.Run("winrm", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, fastPower())
		writePackages(t, e.dir, pkgOther)
		if _, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}, "delivery": "winrm"}, map[string]any{}); err != nil {
			t.Fatal(err)
		}
		if n := e.comm.uploaded[DefaultGuestDirectory+`\`+pkgOther.Name]; n == 0 {
			t.Errorf("delivery = winrm uploaded nothing: %v", e.comm.uploaded)
		}
	})
}

// Exit codes DISM in the stand-in does not produce, classified as the
// plugin must treat them.
func TestRecordExitCodes(t *testing.T) {
	for _, tc := range []struct {
		code   uint32
		result string
		reboot bool
	}{
		{0, resultInstalled, false},
		{3010, resultInstalled, true},
		{1641, resultInstalled, true},
		{2359302, resultAlready, false},
		{0x800F081E, resultNotApplicable, false},
		{0x80240017, resultNotApplicable, false},
		{0x80070005, "", false}, // retried after a reboot
	} {
		r := &installRun{cfg: &Config{Retries: 1}}
		s := &pkgState{pkg: &Package{Name: "x.cab"}}
		r.states = []*pkgState{s}
		r.record(s, agent.InstallResult{Result: agent.ClassifyExitCode(tc.code), ExitCode: tc.code})
		if s.result != tc.result || s.waitingForReboot != tc.reboot {
			t.Errorf("exit %#x: result %q reboot %t; want %q %t", tc.code, s.result, s.waitingForReboot, tc.result, tc.reboot)
		}
		if tc.result == "" && !s.retryAfterReboot {
			t.Errorf("exit %#x: not retried after a reboot", tc.code)
		}
	}
	// 0x800F0823 without a servicing stack among the packages fails.
	r := &installRun{cfg: &Config{Retries: 1}}
	s := &pkgState{pkg: &Package{Name: "lcu.msu"}}
	r.states = []*pkgState{s}
	r.record(s, agent.InstallResult{Result: agent.NeedsServicingStack, ExitCode: 0x800F0823})
	if s.result != resultFailed || !strings.Contains(s.message, "servicing stack") {
		t.Errorf("0x800F0823 without an SSU: %+v", s)
	}
}

// Windows restarting on its own in the middle of an install (as after a
// servicing stack update or a user's scheduled task): the provisioner waits
// for the new boot, counts the reboot, and runs the cut-off install again.
func TestGuestRebootsByItself(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastPower())
	first, second := pkgOther, pkgNotApplicable
	first.Spec = winsim.PackageSpec{Result: "installs"}
	second.Spec = winsim.PackageSpec{Result: "installs", InstallTime: "2s"}
	writePackages(t, e.dir, first, second)
	var once sync.Once
	e.comm.before = func(cmd string) {
		if strings.Contains(cmd, " install ") && strings.Contains(cmd, second.Name) {
			once.Do(func() {
				go func() {
					time.Sleep(300 * time.Millisecond)
					if err := e.g.Machine.Reboot(); err != nil {
						t.Errorf("reboot: %v", err)
					}
				}()
			})
		}
	}
	m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := byFile(m)
	if got[first.Name].Result != resultInstalled || got[second.Name].Result != resultInstalled {
		t.Errorf("manifest %+v", m.Packages)
	}
	if m.Reboots != 0 || m.RebootsObserved != 1 || !e.ui.said("The guest rebooted by itself") {
		t.Errorf("reboots %d started, %d observed; want 0 and 1", m.Reboots, m.RebootsObserved)
	}
	if runs := e.rec.dismRuns(); len(runs) != 3 {
		t.Errorf("DISM runs %v, want 3 (the cut-off install run again)", runs)
	}
	if s := e.g.Machine.PackageState(second.Name); s != "Installed" {
		t.Errorf("state %q", s)
	}
}

// Windows 11 24H2 / Server 2025 cumulative updates (.wim payload) with a
// checkpoint: one DISM call pointed at the target adds the checkpoint from
// the target's folder, then the target (the target needs the checkpoint:
// on its own it would fail with 0x800F0823).
func TestCheckpointChainGoesInWithTarget(t *testing.T) {
	t.Parallel()
	const cpID = "Package_for_RollupFix~31bf3856ad364e35~amd64~~26100.1742.1.3"
	checkpoint := testguest.PackageFile{Name: "windows11.0-kb5043080-x64.msu", KB: "5043080", PackageName: "Package_for_RollupFix",
		Version: "26100.1742.1.3", ProductName: "Windows Server 2025", AppliesTo: "Security Updates", WimLayout: true,
		Spec: winsim.PackageSpec{Result: "reboot_required"}}
	target := testguest.PackageFile{Name: "windows11.0-kb5046617-x64.msu", KB: "5046617", PackageName: "Package_for_RollupFix",
		Version: "26100.2314.1.5", ProductName: "Windows Server 2025", AppliesTo: "Security Updates", WimLayout: true,
		Spec: winsim.PackageSpec{Result: "reboot_required", Requires: cpID}}
	e := newEnv(t, fastPower())
	writePackages(t, e.dir, target, checkpoint)
	m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.msu")}}, nil)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	got := byFile(m)
	if p := got[checkpoint.Name]; p.Kind != guestcontract.KindCheckpoint || p.Result != resultInstalled || !strings.Contains(p.Message, "added with "+target.Name) {
		t.Errorf("checkpoint: %+v", p)
	}
	if p := got[target.Name]; p.Kind != guestcontract.KindCumulative || p.Result != resultInstalled || p.ExitCode != 3010 {
		t.Errorf("target: %+v", p)
	}
	runs := e.rec.dismRuns()
	if len(runs) != 1 || !strings.HasSuffix(strings.ToLower(runs[0]), `\cumulative\`+target.Name) {
		t.Errorf("DISM runs %v, want one, pointed at the target in the cumulative folder", runs)
	}
	installed := map[string]string{}
	for _, p := range e.g.Machine.Packages() {
		installed[p.Identity] = p.State
	}
	if installed[cpID] != "Installed" || installed["Package_for_RollupFix~31bf3856ad364e35~amd64~~26100.2314.1.5"] != "Installed" {
		t.Errorf("servicing store %v: want the checkpoint and the target installed", installed)
	}
	if !e.ui.said("with its checkpoint update(s) " + checkpoint.Name) {
		t.Errorf("the provisioner did not name the checkpoint going in with the target: %q", e.ui.lines)
	}
}

// After a reboot that serviced packages, the provisioner waits for the
// Windows Modules Installer worker (TiWorker.exe) to exit before it goes
// on, bounded by servicing_timeout: a stuck worker does not hang the build.
func TestWaitsForServicingWorker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		worker time.Duration
		// finished: the worker has exited when Provision returns.
		finished bool
		said     string
	}{
		{name: "worker exits", worker: 2 * time.Second, finished: true, said: "Waiting for the Windows Modules Installer worker (TiWorker.exe)"},
		{name: "worker outlives servicing_timeout", worker: time.Minute, finished: false, said: "TiWorker.exe still runs after servicing_timeout (5s); going on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			power := fastPower()
			power.ServicingWorkerTime = tc.worker
			e := newEnv(t, power)
			pkg := pkgOther
			pkg.Spec = winsim.PackageSpec{Result: "reboot_required"}
			writePackages(t, e.dir, pkg)
			m, err := e.provision(t, map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := byFile(m)[pkg.Name]; got.Result != resultInstalled || m.Reboots != 1 {
				t.Errorf("result %q after %d reboots, want installed after 1", got.Result, m.Reboots)
			}
			if running := e.g.Machine.ServicingWorkerRunning(); running == tc.finished {
				t.Errorf("TiWorker.exe running when the provisioner returned: %t, want %t", running, !tc.finished)
			}
			if !e.ui.said(tc.said) {
				t.Errorf("the provisioner did not say %q: %q", tc.said, e.ui.lines)
			}
		})
	}
}

// Ctrl-C (the build's context cancelled) during the delivery: Provision
// returns at once with the cancellation, and the package server is gone.
func TestCancelDuringDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastPower())
	writePackages(t, e.dir, pkgOther)
	p := &Provisioner{poll: 100 * time.Millisecond}
	if err := p.Prepare(map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.comm.before = func(cmd string) {
		if strings.Contains(cmd, " fetch ") {
			cancel()
		}
	}
	ui := &recordingUi{Ui: packersdk.TestUi(t)}
	start := time.Now()
	err := p.Provision(ctx, ui, e.comm, map[string]any{"WinbakeHostIP": "127.0.0.1", "WinbakeHostBindIP": "127.0.0.1"})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 20*time.Second {
		t.Fatalf("err %v after %s, want context.Canceled at once", err, time.Since(start))
	}
	var addr string
	for _, l := range ui.lines {
		if m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(l); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no server address in %q", ui.lines)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the package server at %s still accepts connections after Provision returned", addr)
	}
	if s := e.g.Machine.PackageState(pkgOther.Name); s != "" {
		t.Errorf("package state %q after a cancelled delivery", s)
	}
}
