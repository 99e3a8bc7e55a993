package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/setup"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
	"github.com/winbake/packer-plugin-winbake/post-processor/sysprep"
)

// The checks against the stand-in guest in-process: the simulated Windows
// with cloudbase-init installed as winbake-sysprep installs it, its first
// boots run cloudbase-init on this instance's real config drive (written,
// then read back as the guest's CD) and metadata server, and the checks log
// on over WinRM as the account cloudbase-init created. The broken variants
// also run end to end with real Packer and QEMU in e2e/verify_test.go:
// without cloudbase-init (TestVerifyWithAndWithoutCloudbaseInit), and with
// a leftover answer file, a missing update and no config drive support
// (TestVerifyCatchesBrokenImages).

const standinBuildPassword = "Build-Pw-9"

// standinVariant is the image and the verification: what
// winbake-sysprep's cloudbase_init block says, what winbake-verify's
// settings say, and one thing broken in an otherwise correct image.
type standinVariant struct {
	// cloudbaseInit is the cloudbase_init block (msi is added); its
	// metadata_services default to HttpService and ConfigDriveService.
	cloudbaseInit map[string]interface{}
	// verify are more winbake-verify settings.
	verify map[string]interface{}
	// leftoverAnswerFile leaves the build's answer file in Panther.
	leftoverAnswerFile bool
	// missingUpdate lists an update in updates.json that is not installed.
	missingUpdate bool
	// buildWinRMLeft is an image made as winbake did before
	// winbake-sysprep closed WinRM: the build's HTTP listener with Basic
	// and unencrypted messages and its firewall rule stay; otherwise the
	// image has Windows' defaults (winrm quickconfig's listener and rule).
	buildWinRMLeft bool
}

// winrmListenerPluginClass is cloudbase-init's WinRM listener plugin.
const winrmListenerPluginClass = "cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin"

// variantPlugins are the cloudbase-init plugins of a variant.
func variantPlugins(v standinVariant) []string {
	if p, ok := v.cloudbaseInit["plugins"].([]string); ok {
		return p
	}
	return standinPlugins
}

// imageWinRM is the generalized image's WinRM configuration: Windows'
// defaults, or with the build's left as winbake left them before
// winbake-sysprep closed WinRM.
func imageWinRM(t *testing.T, buildLeft bool) *winsim.WinRMConfig {
	t.Helper()
	cfg := winsim.NewWinRMConfig()
	cfg.NetworkCategory = "Private"
	var out bytes.Buffer
	run := func(code uint32, err error) {
		t.Helper()
		if err != nil || code != 0 {
			t.Fatalf("exit %d: %v: %s", code, err, out.String())
		}
	}
	run(cfg.RunWinrm([]string{"quickconfig", "-quiet"}, &out))
	if buildLeft {
		for _, cmd := range unattend.WinRMCommands() {
			if strings.Contains(cmd.CommandLine, "winrm set") || strings.Contains(cmd.CommandLine, "netsh") {
				args := strings.Fields(strings.TrimPrefix(cmd.CommandLine, "cmd.exe /c "))
				if args[0] == "winrm" {
					run(cfg.RunWinrm(args[1:], &out))
				} else {
					run(cfg.RunNetsh([]string{"advfirewall", "firewall", "add", "rule", "name=" + winrmsec.FirewallRuleHTTP, "dir=in", "action=allow", "protocol=TCP", "localport=5985", "profile=any"}, &out))
				}
			}
		}
	}
	return &cfg
}

const (
	configDriveClass = "cloudbaseinit.metadata.services.configdrive.ConfigDriveService"
	httpServiceClass = "cloudbaseinit.metadata.services.httpservice.HttpService"
)

// standinPlugins are the plugins the checks look at, in cloudbase-init's
// order, and ConfigWinRMCertificateAuthPlugin, which reads the metadata's
// client certificates.
var standinPlugins = []string{
	"cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
	"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
	"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
	"cloudbaseinit.plugins.common.userdata.UserDataPlugin",
	"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
	"cloudbaseinit.plugins.windows.winrmcertificateauth.ConfigWinRMCertificateAuthPlugin",
}

// winbakeCloudbaseConf is the cloudbase-init.conf winbake-sysprep writes
// for the cloudbase_init block.
func winbakeCloudbaseConf(t *testing.T, block map[string]interface{}) []byte {
	t.Helper()
	msi := filepath.Join(t.TempDir(), "CloudbaseInitSetup_Stable_x64.msi")
	if err := os.WriteFile(msi, []byte("MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := map[string]interface{}{"msi": msi, "plugins": standinPlugins}
	for k, v := range block {
		b[k] = v
	}
	var sc sysprep.Config
	if err := sc.Prepare(map[string]interface{}{"winrm_password": standinBuildPassword, "cloudbase_init": b}); err != nil {
		t.Fatal(err)
	}
	conf, err := sysprep.CloudbaseInitConf(sc.CloudbaseInit, false)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(conf)
}

// installStandinCloudbaseInit installs cloudbase-init on the golden
// stand-in as winbake-sysprep does (msiexec, then its configuration).
func installStandinCloudbaseInit(t *testing.T, m *winsim.Machine, conf []byte) {
	t.Helper()
	if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	code, err := m.ConsoleSystem().Processes().Run(context.Background(), "powershell.exe", []string{"-NoProfile", "-Command",
		`$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList '/i "C:\Windows\Temp\CloudbaseInitSetup_x64.msi" /qn /l*v "C:\Windows\Temp\cloudbase-init-install.log" LOGGINGSERIALPORTNAME=COM1 RUN_SERVICE_AS_LOCAL_SYSTEM=1' -Wait -PassThru; exit $p.ExitCode`}, nil, nil)
	if err != nil || code != 0 {
		t.Fatalf("msiexec: %d %v", code, err)
	}
	if err := m.FS().WriteFile(winsim.CloudbaseInitDir+`\conf\cloudbase-init.conf`, conf); err != nil {
		t.Fatal(err)
	}
}

// logOn connects as winbake-verify's check step does: with the
// metadata's admin_pass, or with the posted password when the password
// is not injected. The account's WinRM logon is what the stand-in's
// Windows allows (an account that must change its password is refused).
func (k *checker) logOn(t *testing.T, g *testguest.Guest) {
	t.Helper()
	c := k.Config
	password := c.AdminPassword
	if !*c.InjectAdminPassword {
		var err error
		if password, err = k.postedPassword(); err != nil {
			k.WinRMErr = err
			return
		}
	}
	h, p := g.HostPort()
	httpsPort := 0
	if a := g.TLSAddr(); a != "" {
		_, tp, _ := net.SplitHostPort(a)
		httpsPort, _ = strconv.Atoi(tp)
	}
	k.Door = probeDoor(context.Background(), p, httpsPort, c.Username, password)
	// New opens a shell: a refused logon fails it.
	comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: h, Port: p, Username: c.Username, Password: password, Timeout: time.Minute,
		TransportDecorator: winrmsec.SealedNTLMTransport(c.Username, password)})
	if err != nil {
		k.WinRMErr = err
		return
	}
	var out bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: "echo connected", Stdout: &out}
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: io.Discard, ErrorWriter: io.Discard}
	if err := cmd.RunWithUi(context.Background(), comm, ui); err != nil {
		k.WinRMErr = err
		return
	}
	k.Comm = comm
}

// verifyStandin boots the generalized stand-in as winbake-verify does and
// runs the checks; it returns the report and the console.
func verifyStandin(t *testing.T, v standinVariant) (*Report, string) {
	t.Helper()
	settings := map[string]interface{}{
		"metadata_service": true, "check_password_post": true, "hostname": "verify-inst",
		"build_passwords": []string{standinBuildPassword},
	}
	for k, val := range v.verify {
		settings[k] = val
	}
	c := prepared(t, settings)
	if c.KeepWinRM == nil {
		// As winbake-verify defaults it from the manifest: kept where
		// cloudbase-init creates the HTTPS listener.
		keep := v.buildWinRMLeft || slices.Contains(variantPlugins(v), winrmListenerPluginClass)
		c.KeepWinRM = &keep
	}
	inst := testInstance(t, c)
	if !*c.InjectAdminPassword {
		inst.Metadata.AdminPass = ""
	}
	inst.Metadata.UserData = UserDataScript(inst.Metadata.UUID)
	inst.MAC = "52:54:00:12:34:56"
	dir := t.TempDir()

	// The config drive: written as for the VM, read back as the guest's CD
	// through Windows' CDFS (what cloudbase-init reads in the stand-in VM).
	iso := filepath.Join(dir, "config-drive.iso")
	if err := WriteConfigDrive(iso, inst.Metadata, inst.MAC); err != nil {
		t.Fatal(err)
	}
	isoFile, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	drive, err := setup.OpenCD(setup.BlockDevice{Name: "sr0", Kind: "cd"}, "D", isoFile, isoFile)
	if err != nil {
		t.Fatal(err)
	}
	cd := filepath.Join(dir, "cd")
	if err := setup.CopyCDView(drive, cd, t.Errorf); err != nil {
		t.Fatal(err)
	}
	label := drive.CD.Label()
	drive.Close()
	server := &metadataServer{Mode: ModeOpenStack, Metadata: inst.Metadata, MAC: inst.MAC}
	port, err := server.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()

	// The golden image: cloudbase-init installed by msiexec as
	// winbake-sysprep runs it, its configuration written, generalized.
	stateDir := filepath.Join(dir, "windows")
	packages := []winsim.Package{{FileName: "windows10.0-kb5034439-x64.msu", Preinstalled: true}}
	winrm := imageWinRM(t, v.buildWinRMLeft)
	m, err := winsim.New(winsim.Options{StateDir: stateDir, Users: []string{"packer"}, Packages: packages, Failf: t.Errorf, WinRM: winrm})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	block := map[string]interface{}{"metadata_services": []string{httpServiceClass, configDriveClass}}
	for k, val := range v.cloudbaseInit {
		block[k] = val
	}
	options := map[string]string{"metadata_base_url": fmt.Sprintf("http://127.0.0.1:%d/", port), "retry_count": "1"}
	if o, ok := block["options"].(map[string]string); ok {
		for k, val := range o {
			options[k] = val
		}
	}
	block["options"] = options
	installStandinCloudbaseInit(t, m, winbakeCloudbaseConf(t, block))
	fs := m.FS()
	updates := `{"version":1,"packages":[{"file":"windows10.0-kb5034439-x64.msu","kb":"KB5034439","result":"installed"}`
	if v.missingUpdate {
		updates += `,{"file":"windows10.0-kb5036909-x64.msu","kb":"KB5036909","result":"installed"}`
	}
	must(fs.WriteFile(guestcontract.UpdatesRecordPath, []byte(updates+"]}")))
	if v.leftoverAnswerFile {
		must(fs.WriteFile(`C:\Windows\Panther\unattend.xml`, []byte("<unattend><AutoLogon><Password><Value>"+standinBuildPassword+"</Value></Password></AutoLogon></unattend>")))
	}

	// First boot: cloudbase-init's service, then the reboot it asks for
	// (the new host name), then the rest of its plugins.
	var console bytes.Buffer
	cds := []winsim.Volume{{Label: label, Dir: cd}}
	passwords := map[string]string{}
	for boot := 0; boot < 3; boot++ {
		res, err := m.RunCloudbaseInit(context.Background(), winsim.CloudbaseInitRun{Console: &console, CDs: cds})
		if err != nil {
			t.Fatal(err)
		}
		for u, p := range res.Passwords {
			passwords[u] = p
		}
		must(m.Close())
		if m, err = winsim.New(winsim.Options{StateDir: stateDir, Users: []string{"packer"}, Packages: packages, Failf: t.Errorf, WinRM: winrm}); err != nil {
			t.Fatal(err)
		}
		if !res.Reboot {
			break
		}
	}
	must(m.Close())

	// Windows up: WinRM knows every account cloudbase-init set a password
	// for; Windows itself refuses the ones that must change it first.
	g := testguest.StartForTest(t, testguest.Options{StateDir: stateDir, User: "packer", Password: standinBuildPassword, Accounts: passwords, Packages: packages,
		WinRM: winrm, WinRMListenAddr: func(int) string { return "127.0.0.1:0" }})
	// A build over HTTP: no certificate to look for.
	k := &checker{Config: c, Inst: inst, Serial: readSerial(console.String()), SerialText: console.String(), Server: server, Build: &winrmsec.LegacyBuildWinRM}
	k.logOn(t, g)
	r := &Report{}
	k.Run(context.Background(), r)
	return r, console.String()
}

func resultOf(r *Report, name string) (string, string) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Result, c.Evidence
		}
	}
	return "missing", ""
}

func TestStandinWithCloudbaseInitPassesEveryCheck(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{})
	if len(r.Failed()) != 0 {
		t.Errorf("failed: %v\n%s\nconsole:\n%s", r.Failed(), r.Table(), console)
	}
	for _, name := range []string{"first boot completes", "cloudbase-init ran its plugins", checkWinRMLogon, checkHTTPRefuses, checkHTTPSAbsent,
		"admin password posted encrypted", "hostname set from metadata", "user created", "SSH public key installed", "user data ran", "updates installed",
		"no build password left", checkNoBuildWinRM} {
		if res, ev := resultOf(r, name); res != ResultPass {
			t.Errorf("%s: %s (%s)", name, res, ev)
		}
	}
	if _, ev := resultOf(r, "cloudbase-init ran its plugins"); !strings.Contains(ev, "metadata service HttpService") {
		t.Errorf("evidence %q", ev)
	}
	if !strings.Contains(console, "Rebooting") || strings.Count(console, "Plugins execution done") != 1 {
		t.Errorf("console:\n%s", console)
	}
}

// With cloudbase-init's ConfigWinRMListenerPlugin the instance offers
// WinRM over HTTPS with the certificate cloudbase-init made and logged,
// which winbake-verify expects (keep_winrm defaults to true then); HTTP
// keeps refusing Basic and unencrypted messages although the plugin turns
// Basic on (winrm_enable_basic_auth), as AllowUnencrypted stays off.
func TestStandinWithWinRMListenerPluginOffersHTTPS(t *testing.T) {
	plugins := append(slices.Clone(standinPlugins), winrmListenerPluginClass)
	r, console := verifyStandin(t, standinVariant{cloudbaseInit: map[string]interface{}{"plugins": plugins}})
	if len(r.Failed()) != 0 {
		t.Errorf("failed: %v\n%s\nconsole:\n%s", r.Failed(), r.Table(), console)
	}
	if res, ev := resultOf(r, checkHTTPSKept); res != ResultPass || !strings.Contains(ev, "logged on COM1") {
		t.Errorf("%s: %s (%s)", checkHTTPSKept, res, ev)
	}
	if res, _ := resultOf(r, checkHTTPRefuses); res != ResultPass {
		t.Errorf("%s: %s", checkHTTPRefuses, res)
	}
}

// An image made as winbake made them before it closed WinRM in
// winbake-sysprep (Basic and unencrypted messages over HTTP, the build's
// firewall rule; keep_winrm true by default, as its manifest records
// nothing) fails exactly the three door checks.
func TestStandinBuiltWithTodaysDefaultsFails(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{buildWinRMLeft: true})
	got := r.Failed()
	slices.Sort(got)
	want := []string{checkNoBuildWinRM, checkHTTPSKept, checkHTTPRefuses}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("failed %v, want %v:\n%s\nconsole:\n%s", got, want, r.Table(), console)
	}
	if _, ev := resultOf(r, checkHTTPRefuses); !strings.Contains(ev, "a Basic logon was accepted") {
		t.Errorf("evidence %q", ev)
	}
	if _, ev := resultOf(r, checkNoBuildWinRM); !strings.Contains(ev, winrmsec.FirewallRuleHTTP) {
		t.Errorf("evidence %q", ev)
	}
}

func TestStandinFromTheConfigDriveAlone(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{cloudbaseInit: map[string]interface{}{"metadata_services": []string{configDriveClass}}})
	// The config drive cannot take the password: only that check fails.
	if got := r.Failed(); len(got) != 1 || got[0] != "admin password posted encrypted" {
		t.Errorf("failed: %v\n%s\n%s", got, r.Table(), console)
	}
	if _, ev := resultOf(r, "cloudbase-init ran its plugins"); !strings.Contains(ev, "ConfigDriveService") {
		t.Errorf("evidence %q", ev)
	}
}

// winbake-sysprep turns cloudbase-init's deprecated config drive switches
// off, so config_drive_locations alone decides where it looks: without
// cdrom and partition it does not find the config drive on the CD.
func TestStandinWithoutConfigDriveSupportFails(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{cloudbaseInit: map[string]interface{}{
		"metadata_services": []string{configDriveClass}, "options": map[string]string{"config_drive_locations": "hdd"}}})
	if res, ev := resultOf(r, "cloudbase-init ran its plugins"); res != ResultFail || !strings.Contains(ev, "No metadata service found") {
		t.Errorf("cloudbase-init check %s: %s\nconsole:\n%s", res, ev, console)
	}
	if res, _ := resultOf(r, checkWinRMLogon); res != ResultFail {
		t.Errorf("WinRM check %s: no account was created", res)
	}
}

// With cloudbase-init's own default first_logon_behaviour the account
// must change the injected admin_pass at the next logon: Windows refuses
// WinRM's logon with it, and the report says why that may be.
func TestStandinWithClearTextInjectedOnlyRefusesTheInjectedPassword(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{cloudbaseInit: map[string]interface{}{"first_logon_behaviour": "clear_text_injected_only"}})
	res, ev := resultOf(r, checkWinRMLogon)
	if res != ResultFail || !strings.Contains(ev, `first_logon_behaviour is not "no"`) {
		t.Errorf("WinRM check %s: %s\nconsole:\n%s", res, ev, console)
	}
	if res, _ := resultOf(r, "user created"); res != ResultNotRun {
		t.Errorf("user check %s without a logon", res)
	}
	if res, _ := resultOf(r, "cloudbase-init ran its plugins"); res != ResultPass {
		t.Errorf("cloudbase-init check %s", res)
	}
}

// An image that keeps cloudbase-init's clear_text_injected_only is
// verified without an injected password: cloudbase-init generates one,
// which need not change, posts it encrypted, and WinRM logs on with it.
func TestStandinWithClearTextInjectedOnlyLogsOnWithThePostedPassword(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{
		cloudbaseInit: map[string]interface{}{"first_logon_behaviour": "clear_text_injected_only"},
		verify:        map[string]interface{}{"inject_admin_password": false},
	})
	if len(r.Failed()) != 0 {
		t.Errorf("failed: %v\n%s\nconsole:\n%s", r.Failed(), r.Table(), console)
	}
	if _, ev := resultOf(r, checkWinRMLogon); !strings.Contains(ev, "with the password cloudbase-init posted") {
		t.Errorf("evidence %q", ev)
	}
}

func TestStandinWithLeftoverAnswerFileFails(t *testing.T) {
	r, _ := verifyStandin(t, standinVariant{leftoverAnswerFile: true})
	if got := r.Failed(); len(got) != 1 || got[0] != "no build password left" {
		t.Errorf("failed: %v\n%s", got, r.Table())
	}
	if _, ev := resultOf(r, "no build password left"); !strings.Contains(ev, `C:\Windows\Panther\unattend.xml remains and holds a build password`) {
		t.Errorf("evidence %q", ev)
	}
}

func TestStandinWithMissingUpdateFails(t *testing.T) {
	r, _ := verifyStandin(t, standinVariant{missingUpdate: true})
	if got := r.Failed(); len(got) != 1 || got[0] != "updates installed" {
		t.Errorf("failed: %v\n%s", got, r.Table())
	}
	if _, ev := resultOf(r, "updates installed"); !strings.Contains(ev, "KB5036909 (not in dism /Get-Packages)") {
		t.Errorf("evidence %q", ev)
	}
}

// MAAS mode: the stand-in's cloudbase-init, configured as winbake-sysprep
// writes it and as MAAS's curtin hook then appends to it
// (metadata_services and the maas_* options at the end of the file),
// reads this post-processor's MAAS endpoints (signed with OAuth, as MAAS
// requires), sets the host name, creates the account, installs the key,
// runs the user data and finds no client certificate. Served as before,
// with a 404 for meta-data/x509, ConfigWinRMCertificateAuthPlugin fails
// at every boot and the cloudbase-init check says so.
func TestStandinReadsTheMAASMetadata(t *testing.T) {
	for _, c := range []struct {
		name     string
		x509Gone bool
	}{{"as MAAS serves it", false}, {"x509 answered 404", true}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := prepared(t, map[string]interface{}{"mode": "maas", "hostname": "maas-inst", "keep_winrm": false})
			inst := testInstance(t, cfg)
			inst.Metadata.UserData = UserDataScript(inst.Metadata.UUID)
			server := &metadataServer{Mode: ModeMAAS, Metadata: inst.Metadata}
			handler := http.Handler(server)
			if c.x509Gone {
				handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/meta-data/x509") {
						http.NotFound(w, r)
						return
					}
					server.ServeHTTP(w, r)
				})
			}
			srv := httptest.NewServer(handler)
			defer srv.Close()
			stateDir := t.TempDir()
			m, err := winsim.New(winsim.Options{StateDir: stateDir, Users: []string{"packer"}, Failf: t.Errorf})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { m.Close() }()
			conf := winbakeCloudbaseConf(t, map[string]interface{}{"options": map[string]string{"allow_reboot": "false"}})
			conf = append(conf, []byte("metadata_services=cloudbaseinit.metadata.services.maasservice.MaaSHttpService\r\n"+
				"maas_metadata_url="+srv.URL+"/MAAS/metadata/\r\nmaas_oauth_consumer_key=ck\r\nmaas_oauth_consumer_secret=''\r\n"+
				"maas_oauth_token_key=tk\r\nmaas_oauth_token_secret=ts\r\n")...)
			installStandinCloudbaseInit(t, m, conf)
			var console bytes.Buffer
			for boot := 0; boot < 2; boot++ {
				res, err := m.RunCloudbaseInit(context.Background(), winsim.CloudbaseInitRun{Console: &console})
				if err != nil {
					t.Fatal(err)
				}
				if res.Service != "MaaSHttpService" {
					t.Fatalf("result %+v:\n%s", res, console.String())
				}
			}
			f := readSerial(console.String())
			if f.MetadataService != "MaaSHttpService" || f.PluginsDone != 2 || len(f.Plugins) != len(standinPlugins) {
				t.Errorf("console facts %+v:\n%s", f, console.String())
			}
			if got := m.PendingComputerName(); got != "maas-inst" {
				t.Errorf("pending computer name %q", got)
			}
			keys, _ := m.FS().ReadFile(`C:\Users\Admin\.ssh\authorized_keys`)
			marker, _ := m.FS().ReadFile(UserDataMarker)
			if !strings.Contains(string(keys), strings.Fields(inst.Metadata.PublicKeys["winbake-verify"])[1]) || !strings.Contains(string(marker), inst.Metadata.UUID) {
				t.Errorf("authorized_keys %q, marker %q", keys, marker)
			}
			for _, want := range []string{"GET /MAAS/metadata/2012-03-01/meta-data/", "GET /MAAS/metadata/2012-03-01/meta-data/instance-id",
				"GET /MAAS/metadata/2012-03-01/user-data", "GET /MAAS/metadata/2012-03-01/meta-data/x509"} {
				if !contains(server.Requests(), want) && !(c.x509Gone && strings.HasSuffix(want, "x509")) {
					t.Errorf("no request %q in %v", want, server.Requests())
				}
			}
			r := &Report{}
			(&checker{Config: cfg, Inst: inst, Serial: f}).Run(context.Background(), r)
			res, ev := resultOf(r, "cloudbase-init ran its plugins")
			if c.x509Gone {
				if res != ResultFail || !strings.Contains(ev, "ConfigWinRMCertificateAuthPlugin") {
					t.Errorf("cloudbase-init check %s: %s", res, ev)
				}
			} else if res != ResultPass || len(f.Failed) != 0 {
				t.Errorf("cloudbase-init check %s: %s; failed plugins %v\n%s", res, ev, f.Failed, console.String())
			}
		})
	}
}
