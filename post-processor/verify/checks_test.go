package verify

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"os"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/crypto/ssh"

	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// guestAnswers is a communicator answering each command from a table (exit
// 1 with "The system cannot find the file specified." otherwise).
type guestAnswers struct {
	out map[string]string
	// exit is the exit code of a command of out that does not exit 0.
	exit map[string]int
	ran  []string
}

func (g *guestAnswers) Start(_ context.Context, c *packersdk.RemoteCmd) error {
	g.ran = append(g.ran, c.Command)
	if out, ok := g.out[c.Command]; ok {
		_, _ = io.WriteString(c.Stdout, out)
		c.SetExited(g.exit[c.Command])
		return nil
	}
	_, _ = io.WriteString(c.Stderr, "The system cannot find the file specified.\r\n")
	c.SetExited(1)
	return nil
}
func (g *guestAnswers) Upload(string, io.Reader, *os.FileInfo) error { return nil }
func (g *guestAnswers) UploadDir(string, string, []string) error     { return nil }
func (g *guestAnswers) Download(string, io.Writer) error             { return nil }
func (g *guestAnswers) DownloadDir(string, string, []string) error   { return nil }

// healthyGuest is what a correct image answers after cloudbase-init ran.
func healthyGuest(t *testing.T, c *Config, inst *instance) *guestAnswers {
	t.Helper()
	return &guestAnswers{out: map[string]string{
		"hostname":       strings.ToUpper(c.Hostname) + "\r\n",
		"net user Admin": "User name                    Admin\r\nThe command completed successfully.\r\n",
		`type "C:\Users\Admin\.ssh\authorized_keys"`: inst.Metadata.PublicKeys["winbake-verify"],
		`type ` + UserDataMarker:                     inst.Metadata.UUID + "\r\n",
		`type ` + guestcontract.UpdatesRecordPath:    `{"version":1,"packages":[{"file":"windows10.0-kb5034439-x64.msu","kb":"KB5034439","result":"installed"},{"file":"x.cab","kb":"KB1","result":"not_applicable"}]}`,
		`dism /English /Online /Get-Packages`:        "Package Identity : Package_for_KB5034439~31bf3856ad364e35~amd64~~20348.2200.1.0\r\nState : Installed\r\n",
		`reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon" /v AutoAdminLogon`: "    AutoAdminLogon    REG_SZ    0\r\n",
		showRule(winrmsec.FirewallRuleHTTP):  noRules,
		showRule(winrmsec.FirewallRuleHTTPS): noRules,
	}, exit: map[string]int{showRule(winrmsec.FirewallRuleHTTP): 1, showRule(winrmsec.FirewallRuleHTTPS): 1}}
}

// netsh's answers about a firewall rule (winrmsec.Leftovers).
const noRules = "\r\nNo rules match the specified criteria.\r\n\r\n"

func showRule(name string) string { return `netsh advfirewall firewall show rule name="` + name + `"` }

// closedDoor is what the wire shows of an image with Windows' defaults
// and cloudbase-init's HTTPS listener.
func closedDoor(t *testing.T) winrmDoor {
	t.Helper()
	return winrmDoor{Probed: true, Basic: winrmsec.Logon{Refused: true}, Unsealed: winrmsec.Logon{Refused: true}, HTTPSCert: &x509.Certificate{Raw: []byte("cloudbase-init's")}}
}

func testInstance(t *testing.T, c *Config) *instance {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(&key.PublicKey)
	return &instance{Key: key, Metadata: Metadata{UUID: "5b8c1e0e-uuid", Hostname: c.Hostname, AdminPass: c.AdminPassword,
		PublicKeys: map[string]string{"winbake-verify": string(ssh.MarshalAuthorizedKey(pub))}}}
}

const consoleWithCloudbaseInit = "winbake-standin: setup: complete\n" +
	"INFO cloudbaseinit.init [-] Metadata service loaded: 'ConfigDriveService'\n" +
	"INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'\n" +
	"INFO cloudbaseinit.init [-] Plugins execution done\n"

func runChecks(t *testing.T, c *Config, inst *instance, g *guestAnswers, console string) *Report {
	t.Helper()
	k := &checker{Config: c, Inst: inst, Serial: readSerial(console), SerialText: console, Comm: g, Door: closedDoor(t)}
	r := &Report{}
	k.Run(context.Background(), r)
	return r
}

func prepared(t *testing.T, raw map[string]interface{}) *Config {
	t.Helper()
	var c Config
	if err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestChecksPassOnAHealthyImage(t *testing.T) {
	c := prepared(t, map[string]interface{}{"build_passwords": []string{"Build-Pw-1"},
		"check": []map[string]interface{}{{"name": "time zone", "command": "tzutil /g", "contains": "UTC"}}})
	inst := testInstance(t, c)
	g := healthyGuest(t, c, inst)
	g.out["tzutil /g"] = "UTC\r\n"
	r := runChecks(t, c, inst, g, consoleWithCloudbaseInit)
	if f := r.Failed(); len(f) != 0 {
		t.Errorf("failed %v:\n%s", f, r.Table())
	}
	if len(r.Checks) != 13 {
		t.Errorf("%d checks:\n%s", len(r.Checks), r.Table())
	}
}

func TestChecksCatchBrokenImages(t *testing.T) {
	const buildPw = "Build-Pw-1"
	for _, tc := range []struct {
		name    string
		breakIt func(g *guestAnswers, inst *instance)
		console string
		check   string
		want    string
	}{
		{"no cloudbase-init", func(*guestAnswers, *instance) {}, "winbake-standin: setup: complete\n", "cloudbase-init ran its plugins", "no cloudbase-init plugin ran"},
		{"leftover answer file", func(g *guestAnswers, _ *instance) {
			g.out[`type "C:\Windows\Panther\unattend.xml"`] = "<Password><Value>" + base64.StdEncoding.EncodeToString(utf16le(buildPw+"Password")) + "</Value><PlainText>false</PlainText></Password>"
		}, consoleWithCloudbaseInit, "no build password left", `C:\Windows\Panther\unattend.xml remains and holds a build password`},
		{"auto-logon on", func(g *guestAnswers, _ *instance) {
			g.out[`reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon" /v AutoAdminLogon`] = "    AutoAdminLogon    REG_SZ    1\r\n"
		}, consoleWithCloudbaseInit, "no build password left", "automatic logon is on"},
		{"missing update", func(g *guestAnswers, _ *instance) {
			g.out[`dism /English /Online /Get-Packages`] = "Package Identity : Package_for_ServicingStack~31bf3856ad364e35~amd64~~20348.1.1.0\r\n"
		}, consoleWithCloudbaseInit, "updates installed", "KB5034439 (not in dism /Get-Packages)"},
		{"update not finished", func(g *guestAnswers, _ *instance) {
			g.out[`dism /English /Online /Get-Packages`] = "Package Identity : Package_for_KB5034439~31bf3856ad364e35~amd64~~20348.2200.1.0\r\nState : Install Pending\r\n"
		}, consoleWithCloudbaseInit, "updates installed", "KB5034439 (installed in the manifest, DISM state Install Pending)"},
		{"deferred update still missing", func(g *guestAnswers, _ *instance) {
			g.out[`type `+guestcontract.UpdatesRecordPath] = `{"version":1,"packages":[{"file":"windows10.0-kb5034439-x64.msu","kb":"KB5034439","result":"installed"},` +
				`{"file":"windows10.0-kb5000012-x64.cab","kb":"5000012","result":"deferred"}]}`
		}, consoleWithCloudbaseInit, "updates installed", "KB5000012 (deferred in the manifest, not in dism /Get-Packages)"},
		{"hostname not set", func(g *guestAnswers, _ *instance) { g.out["hostname"] = "WIN-ABCDEF\r\n" }, consoleWithCloudbaseInit, "hostname set from metadata", `"WIN-ABCDEF"`},
		{"user data did not run", func(g *guestAnswers, _ *instance) { delete(g.out, `type `+UserDataMarker) }, consoleWithCloudbaseInit, "user data ran", "lacks the instance UUID"},
		{"no SSH key", func(g *guestAnswers, _ *instance) { delete(g.out, `type "C:\Users\Admin\.ssh\authorized_keys"`) }, consoleWithCloudbaseInit, "SSH public key installed", "does not hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := prepared(t, map[string]interface{}{"build_passwords": []string{buildPw}})
			inst := testInstance(t, c)
			g := healthyGuest(t, c, inst)
			tc.breakIt(g, inst)
			r := runChecks(t, c, inst, g, tc.console)
			f := r.Failed()
			if len(f) != 1 || f[0] != tc.check {
				t.Fatalf("failed %v, want only %q:\n%s", f, tc.check, r.Table())
			}
			for _, ch := range r.Checks {
				if ch.Name == tc.check && !strings.Contains(ch.Evidence, tc.want) {
					t.Errorf("evidence %q lacks %q", ch.Evidence, tc.want)
				}
				if strings.Contains(ch.Evidence, buildPw) || strings.Contains(ch.Evidence, c.AdminPassword) {
					t.Errorf("a password is in the evidence of %s", ch.Name)
				}
			}
		})
	}
}

// A package deferred to first boot that went in there counts as installed:
// DISM, not the build's record, says what the image holds.
func TestDeferredUpdateInstalledAtFirstBootPasses(t *testing.T) {
	c := prepared(t, map[string]interface{}{})
	inst := testInstance(t, c)
	g := healthyGuest(t, c, inst)
	g.out[`type `+guestcontract.UpdatesRecordPath] = `{"version":1,"packages":[{"file":"windows10.0-kb5000012-x64.cab","kb":"KB5000012","result":"deferred"}]}`
	g.out[`dism /English /Online /Get-Packages`] = "Package Identity : Package_for_KB5000012~31bf3856ad364e35~amd64~~10.0.1.0\r\nState : Installed\r\n\r\n" +
		"Package Identity : Package_for_KB5000010~31bf3856ad364e35~amd64~~10.0.1.0\r\nState : Superseded\r\n"
	r := runChecks(t, c, inst, g, consoleWithCloudbaseInit)
	if res, ev := resultOf(r, "updates installed"); res != ResultPass || !strings.Contains(ev, "KB5000012 (deferred in the manifest, installed at first boot)") {
		t.Errorf("updates installed: %s (%s)", res, ev)
	}
	if got := dismPackageStates(g.out[`dism /English /Online /Get-Packages`]); got["KB5000012"] != "Installed" || got["KB5000010"] != "Superseded" ||
		got["package_for_kb5000010~31bf3856ad364e35~amd64~~10.0.1.0"] != "Superseded" || len(got) != 4 {
		t.Errorf("states %v", got)
	}
}

// Cumulative updates and servicing stacks are listed by DISM under
// identities without their KB (Package_for_RollupFix,
// Package_for_ServicingStack_<n>): the record's identity finds them.
func TestUpdatesFoundByIdentity(t *testing.T) {
	c := prepared(t, map[string]interface{}{})
	inst := testInstance(t, c)
	g := healthyGuest(t, c, inst)
	g.out[`type `+guestcontract.UpdatesRecordPath] = `{"version":1,"packages":[` +
		`{"file":"ssu-20348.2700-x64.cab","kb":"KB5044415","identity":"Package_for_ServicingStack_2700~31bf3856ad364e35~amd64~~20348.2700.1.0","result":"installed"},` +
		`{"file":"windows10.0-kb5044281-x64.msu","kb":"KB5044281","identity":"Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2762.1.8","result":"installed"}]}`
	g.out[`dism /English /Online /Get-Packages`] = "Package Identity : Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2762.1.8\r\nState : Installed\r\n\r\n" +
		"Package Identity : Package_for_ServicingStack_2700~31bf3856ad364e35~amd64~~20348.2700.1.0\r\nState : Installed\r\n"
	r := runChecks(t, c, inst, g, consoleWithCloudbaseInit)
	if res, ev := resultOf(r, "updates installed"); res != ResultPass || !strings.Contains(ev, "2 package(s) installed: KB5044415, KB5044281") {
		t.Errorf("updates installed: %s (%s)", res, ev)
	}
	g.out[`dism /English /Online /Get-Packages`] = "Package Identity : Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2762.1.8\r\nState : Install Pending\r\n"
	r = runChecks(t, c, inst, g, consoleWithCloudbaseInit)
	if res, ev := resultOf(r, "updates installed"); res != ResultFail ||
		!strings.Contains(ev, "KB5044415 (not in dism /Get-Packages)") || !strings.Contains(ev, "KB5044281 (installed in the manifest, DISM state Install Pending)") {
		t.Errorf("updates installed with the cumulative update pending: %s (%s)", res, ev)
	}
}

func TestPasswordPostCheck(t *testing.T) {
	c := prepared(t, map[string]interface{}{"metadata_service": true, "check_password_post": true})
	inst := testInstance(t, c)
	s := &metadataServer{}
	k := &checker{Config: c, Inst: inst, Server: s}
	r := &Report{}
	k.checkPassword(r)
	if r.Checks[0].Result != ResultFail || !strings.Contains(r.Checks[0].Evidence, "nothing was posted") {
		t.Errorf("%+v", r.Checks)
	}
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, &inst.Key.PublicKey, []byte(c.AdminPassword))
	s.password = base64.StdEncoding.EncodeToString(ct)
	r = &Report{}
	k.checkPassword(r)
	if r.Checks[0].Result != ResultPass {
		t.Errorf("%+v", r.Checks)
	}
	ct, _ = rsa.EncryptPKCS1v15(rand.Reader, &inst.Key.PublicKey, []byte("another"))
	s.password = base64.StdEncoding.EncodeToString(ct)
	r = &Report{}
	k.checkPassword(r)
	if r.Checks[0].Result != ResultFail {
		t.Errorf("a different password passed: %+v", r.Checks)
	}
}
