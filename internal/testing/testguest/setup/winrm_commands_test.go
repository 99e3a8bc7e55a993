package setup

import (
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// The first logon of a build over HTTPS: the certificate is imported from
// the answer CD (found by the drive search), the HTTPS listener names it,
// 5986 is open, Basic is on, unencrypted messages stay refused; what the
// service serves follows. Without the medium's file nothing is imported
// and the HTTPS listener cannot be created.
func TestInterpretHTTPSFirstLogon(t *testing.T) {
	cert, err := winrmsec.NewBuildCertificate()
	if err != nil {
		t.Fatal(err)
	}
	const password = "00112233445566778899aabbccddeeff"
	pfx, err := cert.PFX(password, 20348)
	if err != nil {
		t.Fatal(err)
	}
	s := unattend.Settings{WinRM: unattend.WinRMSettings{HTTPS: true, Thumbprint: cert.Thumbprint(), PFXFile: winrmsec.PFXFileName,
		PFXPassword: password, FirewallRule: winrmsec.FirewallRuleHTTPS}}
	install := testCD(t, "sr0", "D", map[string]string{"sources/install.wim": "x"})
	answer := testCD(t, "sr1", "E", map[string]string{"autounattend.xml": "x", winrmsec.PFXFileName: string(pfx)})

	run := func(media []Medium, withCertificate bool) *State {
		st := &State{WinRM: WinRMState{WinRMConfig: winsim.NewWinRMConfig()}}
		for _, c := range s.WinRMCommands() {
			var out Outcome
			if usesMedia(c.CommandLine) {
				out = InterpretWithMedia(st, media, c.CommandLine)
			} else {
				out = Interpret(st, c.CommandLine)
			}
			t.Logf("%s -> %s", c.CommandLine, out.Summary)
			if strings.Contains(c.CommandLine, "Transport=HTTPS") && !withCertificate {
				if out.Understood {
					t.Errorf("an HTTPS listener was created without its certificate: %+v", out)
				}
				continue
			}
			if !out.Understood {
				t.Errorf("%s: %s", c.CommandLine, out.Summary)
			}
		}
		return st
	}

	st := run([]Medium{install, answer}, true)
	sc := st.WinRM.Certificate(cert.Thumbprint())
	if sc == nil || sc.Exportable {
		t.Fatalf("certificate %+v", sc)
	}
	eps, auth, reject, notes := st.WinRM.Endpoints()
	if len(eps) != 2 || eps[1].Transport != "HTTPS" || eps[1].Port != 5986 || !reject || auth == 0 {
		t.Errorf("endpoints %+v, reject unencrypted %t, notes %v", eps, reject, notes)
	}
	if ok, why := st.WinRMReachable(true); !ok {
		t.Error(why)
	}
	if rules := st.WinRM.RulesNamed(winrmsec.FirewallRuleHTTPS); len(rules) != 1 || rules[0].Port != 5986 {
		t.Errorf("rules %+v", rules)
	}

	st = run([]Medium{install}, false)
	if len(st.WinRM.Certificates) != 0 || len(st.WinRM.Listeners) != 1 {
		t.Errorf("without the medium's file: certificates %d, listeners %+v", len(st.WinRM.Certificates), st.WinRM.Listeners)
	}
}
