package sysprep

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// buildGuest starts the stand-in with WinRM as the build's first logon
// left it (enable-winrm.cmd over HTTP, or enable-winrm-https.cmd with
// cert), serving from that configuration on loopback ports.
func buildGuest(t *testing.T, cert *winrmsec.BuildCertificate) (*testguest.Guest, *winsim.WinRMConfig) {
	t.Helper()
	cfg := winsim.NewWinRMConfig()
	var out bytes.Buffer
	mustRun := func(code uint32, err error) {
		t.Helper()
		if err != nil || code != 0 {
			t.Fatalf("exit %d: %v\n%s", code, err, out.String())
		}
	}
	cfg.NetworkCategory = "Private"
	mustRun(cfg.RunWinrm([]string{"quickconfig", "-quiet"}, &out))
	if cert == nil {
		mustRun(cfg.RunWinrm([]string{"set", "winrm/config/service", `@{AllowUnencrypted="true"}`}, &out))
		mustRun(cfg.RunNetsh([]string{"advfirewall", "firewall", "add", "rule", "name=" + winrmsec.FirewallRuleHTTP, "dir=in", "action=allow", "protocol=TCP", "localport=5985", "profile=any"}, &out))
	} else {
		pfx, err := cert.PFX("0123456789abcdef0123456789abcdef", 20348)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.ImportPFX(pfx, "0123456789abcdef0123456789abcdef", false); err != nil {
			t.Fatal(err)
		}
		mustRun(cfg.RunWinrm([]string{"create", "winrm/config/Listener?Address=*+Transport=HTTPS", `@{CertificateThumbprint="` + cert.Thumbprint() + `"}`}, &out))
		mustRun(cfg.RunNetsh([]string{"advfirewall", "firewall", "add", "rule", "name=" + winrmsec.FirewallRuleHTTPS, "dir=in", "action=allow", "protocol=TCP", "localport=5986", "profile=any"}, &out))
	}
	mustRun(cfg.RunWinrm([]string{"set", "winrm/config/service/auth", `@{Basic="true"}`}, &out))
	// PowerShell writes its first-use progress record, as on Windows.
	g := testguest.StartForTest(t, testguest.Options{User: "Administrator", Password: testPassword,
		WinRM: &cfg, WinRMListenAddr: func(int) string { return "127.0.0.1:0" }})
	return g, &cfg
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// The closing leaves Windows' defaults for both kinds of golden image:
// the build's listener, rule and certificate gone, Basic and unencrypted
// messages refused, and the run goes on over NTLM with encryption.
func TestStepCloseWinRM(t *testing.T) {
	cert, err := winrmsec.NewBuildCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cert  *winrmsec.BuildCertificate
		build winrmsec.BuildWinRM
	}{
		{"http", nil, winrmsec.LegacyBuildWinRM},
		{"https", cert, winrmsec.BuildWinRM{Transport: winrmsec.TransportHTTPS, Port: 5986, Certificate: cert.PEM(), Thumbprint: cert.Thumbprint(),
			FirewallRule: winrmsec.FirewallRuleHTTPS, Basic: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, cfg := buildGuest(t, tc.cert)
			httpPort := port(t, g.Addr())
			cc := &sdkwinrm.Config{Host: "127.0.0.1", Port: httpPort, Username: "Administrator", Password: testPassword, Timeout: time.Minute}
			state := new(multistep.BasicStateBag)
			var ui bytes.Buffer
			state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &ui})
			state.Put(qemuvm.StateHostPort, httpPort)
			if tc.cert != nil {
				tlsPort := port(t, g.TLSAddr())
				cc.Port, cc.Https, cc.TransportDecorator = tlsPort, true, winrmsec.PinnedTransport(tc.build.Certificate, false, true)
				state.Put(qemuvm.StateHostPort, tlsPort)
				state.Put(stateHTTPHostPort, httpPort)
			}
			comm, err := sdkwinrm.New(cc)
			if err != nil {
				t.Fatalf("the build's WinRM: %v", err)
			}
			state.Put("communicator", comm)
			step := &stepCloseWinRM{Build: tc.build, User: "Administrator", Password: testPassword, Timeout: time.Minute}
			if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
				t.Fatalf("halted: %v", state.Get("error"))
			}
			defer step.Cleanup(state)
			eps, _, reject, _ := cfg.Endpoints()
			if len(eps) != 1 || eps[0].Transport != "HTTP" || cfg.Auth.Basic || cfg.AllowUnencrypted || !reject || len(cfg.Certificates) != 0 ||
				len(cfg.RulesNamed(tc.build.FirewallRule)) != 0 || len(cfg.RulesNamed("Windows Remote Management (HTTP-In)")) != 1 {
				t.Errorf("after closing: %+v", cfg)
			}
			if closed, _ := state.Get(stateWinRMClosed).(bool); !closed {
				t.Error("not recorded as closed")
			}
			// The session that goes on is the new, encrypted one.
			next := communicatorOf(state)
			r, err := runGuest(context.Background(), next, "hostname")
			if err != nil || r.ExitStatus != 0 {
				t.Errorf("the new session: %v %+v", err, r)
			}
		})
	}
}

// A closing that leaves the build's door open halts the run.
func TestStepCloseWinRMCatchesLeftovers(t *testing.T) {
	g, cfg := buildGuest(t, nil)
	httpPort := port(t, g.Addr())
	comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: "127.0.0.1", Port: httpPort, Username: "Administrator", Password: testPassword, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}})
	state.Put(qemuvm.StateHostPort, httpPort)
	state.Put("communicator", comm)
	// A golden image whose manifest names another rule: the build's stays.
	build := winrmsec.LegacyBuildWinRM
	build.FirewallRule = "WinRM HTTP (some other name)"
	step := &stepCloseWinRM{Build: build, User: "Administrator", Password: testPassword, Timeout: time.Minute}
	if action := step.Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("continued with the build's firewall rule in place")
	}
	if err := state.Get("error").(error).Error(); !strings.Contains(err, "the firewall rule "+winrmsec.FirewallRuleHTTP+" remains") {
		t.Errorf("error: %s", err)
	}
	_ = cfg
}
