package testguest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

func TestParseCatalog(t *testing.T) {
	pkgs, err := ParseCatalog(strings.NewReader(`{"packages": [
		{"file": "ssu.cab", "result": "installs"},
		{"file": "lcu.msu", "result": "reboot_required", "requires_ssu": "ssu.cab", "ubr": 2762,
		 "boot_servicing": "1.5s", "install_time": "2s", "second_reboot": true, "failures": 1, "failure_code": 2148468002},
		{"file": "old.cab", "result": "not_applicable", "identity": "Package_for_KB1~31bf3856ad364e35~amd64~~10.0.1.0", "preinstalled": true}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []winsim.Package{
		{FileName: "ssu.cab", Result: winsim.Installs},
		{FileName: "lcu.msu", Result: winsim.InstallsRebootRequired, RequiresSSU: "ssu.cab", UBR: 2762,
			BootServicing: 1500 * time.Millisecond, InstallTime: 2 * time.Second, SecondReboot: true, Failures: 1, FailureCode: 2148468002},
		{FileName: "old.cab", Result: winsim.NotApplicable, Identity: "Package_for_KB1~31bf3856ad364e35~amd64~~10.0.1.0", Preinstalled: true},
	}
	if len(pkgs) != len(want) {
		t.Fatalf("%d packages", len(pkgs))
	}
	for i := range want {
		if g, w := pkgs[i], want[i]; g.FileName != w.FileName || g.Result != w.Result || g.RequiresSSU != w.RequiresSSU || g.UBR != w.UBR ||
			g.BootServicing != w.BootServicing || g.InstallTime != w.InstallTime || g.SecondReboot != w.SecondReboot ||
			g.Failures != w.Failures || g.FailureCode != w.FailureCode || g.Identity != w.Identity || g.Preinstalled != w.Preinstalled {
			t.Errorf("package %d: %+v, want %+v", i, g, w)
		}
	}
	for _, bad := range []string{
		`{"packages": [{"file": "a.cab", "result": "installed"}]}`,
		`{"packages": [{"file": "a.cab", "result": "installs", "reboots": 1}]}`,
		`{"packages": [{"result": "installs"}]}`,
		`{"packages": [{"file": "a.cab", "result": "installs", "install_time": 5}]}`,
		`{"packages": [{"file": "a.cab", "result": "installs", "install_time": "-1s"}]}`,
		`{"packages": []} {}`,
		`[]`,
	} {
		if _, err := ParseCatalog(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestParseWindows(t *testing.T) {
	w, err := ParseWindows("2019")
	if err != nil || w.Build != 17763 || w.ProductName != "Windows Server 2019 Datacenter" {
		t.Errorf("2019: %+v %v", w, err)
	}
	if w, err := ParseWindows("2022"); err != nil || w != winsim.DefaultWindows {
		t.Errorf("2022: %+v %v", w, err)
	}
	w, err = ParseWindows(`{"product_name": "Windows Server 2022 Standard", "edition_id": "ServerStandard", "build": 20348, "ubr": 1}`)
	if err != nil || w.EditionID != "ServerStandard" || w.UBR != 1 {
		t.Errorf("JSON: %+v %v", w, err)
	}
	for _, bad := range []string{"2012", `{"build": 1}`, `{"product_name": "x", "build": 1, "extra": 1}`} {
		if _, err := ParseWindows(bad); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// The guest's wiring and lifecycle: the agent installed (and kept when the
// disk is reused), the credentials, a guest started powered off, Close.
func TestGuestLifecycle(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{}); err == nil {
		t.Error("New without StateDir")
	}
	g, err := New(Options{StateDir: dir, User: "packer", Password: "pw", AgentImage: []byte("MZ custom")})
	if err != nil {
		t.Fatal(err)
	}
	if g.Addr() != "" {
		t.Errorf("listening before Start: %s", g.Addr())
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err == nil {
		t.Error("second Start accepted")
	}
	if u, p := g.Credentials(); u != "packer" || p != "pw" {
		t.Errorf("credentials %s/%s", u, p)
	}
	if h, p := g.HostPort(); h != "127.0.0.1" || p == 0 {
		t.Errorf("HostPort %s %d", h, p)
	}
	if b, err := g.Machine.FS().ReadFile(AgentPath); err != nil || string(b) != "MZ custom" {
		t.Errorf("agent file %q %v", b, err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := g.Start(); err == nil {
		t.Error("Start after Close accepted")
	}

	// The same disk again, powered off: the agent's file is kept, WinRM
	// refuses until the machine is powered on.
	g = StartForTest(t, Options{StateDir: dir, User: "packer", Password: "pw", StartOff: true})
	if b, _ := g.Machine.FS().ReadFile(AgentPath); !bytes.Equal(b, []byte("MZ custom")) {
		t.Errorf("agent file replaced: %q", b)
	}
	c := client(t, g, "PT5S", 0)
	if r := runCmd(t, c, "echo hi", 5*time.Second); r.err == nil || !strings.Contains(r.err.Error(), "connection refused") {
		t.Errorf("off: %v", r)
	}
	if err := g.Machine.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if err := g.Machine.WaitBoots(ctxTimeout(t, 10*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, c, "echo hi"); r.stdout != "hi\r\n" {
		t.Errorf("after PowerOn: %v", r)
	}

	// A fresh disk gets the default agent image.
	g = StartForTest(t, Options{})
	if b, _ := g.Machine.FS().ReadFile(AgentPath); !bytes.Equal(b, DefaultAgentImage) {
		t.Errorf("default agent file %q", b)
	}
}
