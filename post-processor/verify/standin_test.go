package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testguest/setup"
	"github.com/winbake/packer-plugin-winbake/internal/testguest/winsim"
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

// standinVariant breaks one thing of an otherwise correct image.
type standinVariant struct {
	// conf replaces the [DEFAULT] options after the metadata services.
	services, extra string
	// leftoverAnswerFile leaves the build's answer file in Panther.
	leftoverAnswerFile bool
	// missingUpdate lists an update in updates.json that is not installed.
	missingUpdate bool
}

const (
	configDriveClass = "cloudbaseinit.metadata.services.configdrive.ConfigDriveService"
	httpServiceClass = "cloudbaseinit.metadata.services.httpservice.HttpService"
)

// cloudbaseConfFor is the cloudbase-init.conf winbake-sysprep writes with
// the given metadata services and the plugins the checks look at.
func cloudbaseConfFor(services, metadataURL, extra string) string {
	return strings.ReplaceAll("[DEFAULT]\nusername=Admin\ngroups=Administrators\ninject_user_password=true\n"+
		"config_drive_raw_hhd=true\nconfig_drive_cdrom=true\nconfig_drive_vfat=true\nverbose=true\ndebug=true\n"+
		"logdir=C:\\Program Files\\Cloudbase Solutions\\Cloudbase-Init\\log\\\nlogfile=cloudbase-init.log\n"+
		"logging_serial_port_settings=COM1,115200,N,8\nretry_count=1\n"+
		"metadata_services="+services+"\n"+
		"plugins=cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin,cloudbaseinit.plugins.windows.createuser.CreateUserPlugin,"+
		"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin,cloudbaseinit.plugins.common.userdata.UserDataPlugin,"+
		"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin\n"+
		"check_latest_version=true\n"+extra+"[openstack]\nmetadata_base_url="+metadataURL+"\n", "\n", "\r\n")
}

// verifyStandin boots the generalized stand-in as winbake-verify does and
// runs the checks; it returns the report and the console.
func verifyStandin(t *testing.T, v standinVariant) (*Report, string) {
	t.Helper()
	c := prepared(t, map[string]interface{}{
		"metadata_service": true, "check_password_post": true, "hostname": "verify-inst",
		"build_passwords": []string{standinBuildPassword},
	})
	inst := testInstance(t, c)
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
	m, err := winsim.New(winsim.Options{StateDir: stateDir, Users: []string{"packer"}, Packages: packages, Failf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fs := m.FS()
	must(fs.WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, []byte("MSI")))
	code, err := m.ConsoleSystem().Processes().Run(context.Background(), "powershell.exe", []string{"-NoProfile", "-Command",
		`$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList '/i "C:\Windows\Temp\CloudbaseInitSetup_x64.msi" /qn /l*v "C:\Windows\Temp\cloudbase-init-install.log" LOGGINGSERIALPORTNAME=COM1 RUN_SERVICE_AS_LOCAL_SYSTEM=1' -Wait -PassThru; exit $p.ExitCode`}, nil, nil)
	if err != nil || code != 0 {
		t.Fatalf("msiexec: %d %v", code, err)
	}
	services := v.services
	if services == "" {
		services = httpServiceClass + "," + configDriveClass
	}
	must(fs.WriteFile(winsim.CloudbaseInitDir+`\conf\cloudbase-init.conf`, []byte(cloudbaseConfFor(services, fmt.Sprintf("http://127.0.0.1:%d/", port), v.extra))))
	updates := `{"version":1,"packages":[{"file":"windows10.0-kb5034439-x64.msu","kb":"KB5034439","result":"installed"}`
	if v.missingUpdate {
		updates += `,{"file":"windows10.0-kb5036909-x64.msu","kb":"KB5036909","result":"installed"}`
	}
	must(fs.WriteFile(updatesManifestPath, []byte(updates+"]}")))
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
		if m, err = winsim.New(winsim.Options{StateDir: stateDir, Users: []string{"packer"}, Packages: packages, Failf: t.Errorf}); err != nil {
			t.Fatal(err)
		}
		if !res.Reboot {
			break
		}
	}
	accounts := map[string]string{}
	for _, a := range m.LocalAccounts() {
		if !a.MustChangePassword && passwords[a.Name] != "" {
			accounts[a.Name] = passwords[a.Name]
		}
	}
	must(m.Close())

	// Windows up: WinRM with the accounts that can log on.
	g := testguest.StartForTest(t, testguest.Options{StateDir: stateDir, User: "packer", Password: standinBuildPassword, Accounts: accounts, Packages: packages})
	k := &checker{Config: c, Inst: inst, Serial: readSerial(console.String()), Server: server}
	if pw, ok := accounts[c.Username]; ok {
		h, p := g.HostPort()
		comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: h, Port: p, Username: c.Username, Password: pw, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		k.Comm = comm
	} else {
		k.WinRMErr = fmt.Errorf("no account %s", c.Username)
	}
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
	for _, name := range []string{"first boot completes", "cloudbase-init ran its plugins", "WinRM answers (keep_winrm = true)", "admin password posted encrypted",
		"hostname set from metadata", "user created", "SSH public key installed", "user data ran", "updates installed", "no build password left"} {
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

func TestStandinFromTheConfigDriveAlone(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{services: configDriveClass})
	// The config drive cannot take the password: only that check fails.
	if got := r.Failed(); len(got) != 1 || got[0] != "admin password posted encrypted" {
		t.Errorf("failed: %v\n%s\n%s", got, r.Table(), console)
	}
	if _, ev := resultOf(r, "cloudbase-init ran its plugins"); !strings.Contains(ev, "ConfigDriveService") {
		t.Errorf("evidence %q", ev)
	}
}

func TestStandinWithoutConfigDriveSupportFails(t *testing.T) {
	r, console := verifyStandin(t, standinVariant{services: configDriveClass, extra: "config_drive_cdrom=false\n"})
	if res, ev := resultOf(r, "cloudbase-init ran its plugins"); res != ResultFail || !strings.Contains(ev, "No metadata service found") {
		t.Errorf("cloudbase-init check %s: %s\nconsole:\n%s", res, ev, console)
	}
	if res, _ := resultOf(r, "WinRM answers (keep_winrm = true)"); res != ResultFail {
		t.Errorf("WinRM check %s: no account was created", res)
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

// MAAS mode: the stand-in's cloudbase-init with MaaSHttpService reads this
// post-processor's MAAS endpoints (signed with OAuth, as MAAS requires) and
// sets the host name, creates the account, installs the key and runs the
// user data.
func TestStandinReadsTheMAASMetadata(t *testing.T) {
	c := prepared(t, map[string]interface{}{"mode": "maas", "hostname": "maas-inst"})
	inst := testInstance(t, c)
	inst.Metadata.UserData = UserDataScript(inst.Metadata.UUID)
	server := &metadataServer{Mode: ModeMAAS, Metadata: inst.Metadata}
	port, err := server.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	stateDir := t.TempDir()
	m, err := winsim.New(winsim.Options{StateDir: stateDir, Users: []string{"packer"}, Failf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { m.Close() }()
	if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	code, err := m.ConsoleSystem().Processes().Run(context.Background(), "msiexec.exe", []string{"/i", `C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, "/qn", "LOGGINGSERIALPORTNAME=COM1"}, nil, nil)
	if err != nil || code != 0 {
		t.Fatalf("msiexec: %d %v", code, err)
	}
	conf := cloudbaseConfFor("cloudbaseinit.metadata.services.maasservice.MaaSHttpService", "", "allow_reboot=false\n"+
		fmt.Sprintf("maas_metadata_url=http://127.0.0.1:%d/MAAS/metadata/\nmaas_oauth_consumer_key=ck\nmaas_oauth_token_key=tk\nmaas_oauth_token_secret=ts\n", port))
	if err := m.FS().WriteFile(winsim.CloudbaseInitDir+`\conf\cloudbase-init.conf`, []byte(conf)); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	res, err := m.RunCloudbaseInit(context.Background(), winsim.CloudbaseInitRun{Console: &console})
	if err != nil {
		t.Fatal(err)
	}
	f := readSerial(console.String())
	if res.Service != "MaaSHttpService" || f.MetadataService != "MaaSHttpService" || f.PluginsDone != 1 || len(f.Plugins) != 5 {
		t.Errorf("result %+v, console facts %+v:\n%s", res, f, console.String())
	}
	if got := m.PendingComputerName(); got != "maas-inst" {
		t.Errorf("pending computer name %q", got)
	}
	keys, _ := m.FS().ReadFile(`C:\Users\Admin\.ssh\authorized_keys`)
	marker, _ := m.FS().ReadFile(UserDataMarker)
	if !strings.Contains(string(keys), strings.Fields(inst.Metadata.PublicKeys["winbake-verify"])[1]) || !strings.Contains(string(marker), inst.Metadata.UUID) {
		t.Errorf("authorized_keys %q, marker %q", keys, marker)
	}
	for _, want := range []string{"GET /MAAS/metadata/2012-03-01/meta-data/", "GET /MAAS/metadata/2012-03-01/meta-data/instance-id", "GET /MAAS/metadata/2012-03-01/user-data"} {
		found := false
		for _, r := range server.Requests() {
			found = found || r == want
		}
		if !found {
			t.Errorf("no request %q in %v", want, server.Requests())
		}
	}
}
