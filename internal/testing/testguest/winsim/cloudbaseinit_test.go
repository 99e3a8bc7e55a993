package winsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// installCloudbaseInit installs the cloudbase-init MSI as winbake-sysprep
// does and writes conf as its cloudbase-init.conf.
func installCloudbaseInit(t *testing.T, m *Machine, conf string) {
	t.Helper()
	if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	expect(t, ps(t, m, `$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList '/i "C:\Windows\Temp\CloudbaseInitSetup_x64.msi" /qn /l*v "C:\Windows\Temp\cloudbase-init-install.log" LOGGINGSERIALPORTNAME=COM1 RUN_SERVICE_AS_LOCAL_SYSTEM=1' -Wait -PassThru; exit $p.ExitCode`), 0, "", "")
	if err := m.FS().WriteFile(CloudbaseInitDir+`\conf\cloudbase-init.conf`, []byte(strings.ReplaceAll(conf, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
}

const (
	configDriveService = "cloudbaseinit.metadata.services.configdrive.ConfigDriveService"
	httpService        = "cloudbaseinit.metadata.services.httpservice.HttpService"
	modelledPlugins    = "cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin," +
		"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin," +
		"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin," +
		"cloudbaseinit.plugins.common.userdata.UserDataPlugin," +
		"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin"
)

// cloudbaseConf is a cloudbase-init.conf with the modelled plugins;
// extra options follow in [DEFAULT] (a later line of an option wins).
func cloudbaseConf(services, extra string) string {
	return "[DEFAULT]\nusername=Admin\ngroups=Administrators\ninject_user_password=true\n" +
		"bsdtar_path=C:\\Program Files\\Cloudbase Solutions\\Cloudbase-Init\\bin\\bsdtar.exe\n" +
		"mtools_path=C:\\Program Files\\Cloudbase Solutions\\Cloudbase-Init\\bin\\\n" +
		"verbose=true\ndebug=true\nlogging_serial_port_settings=COM1,115200,N,8\n" +
		"metadata_services=" + services + "\nplugins=" + modelledPlugins + "\n" + extra
}

// instanceMetadata is an instance's meta_data.json and user data, as
// OpenStack gives them.
type instanceMetadata struct {
	key      *rsa.PrivateKey
	meta     map[string]any
	userData string
}

func newInstanceMetadata(t *testing.T, adminPass string) *instanceMetadata {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(&key.PublicKey)
	authorized := string(ssh.MarshalAuthorizedKey(pub))
	meta := map[string]any{
		"uuid": "0b5f8c6e-6d3a-4f5e-9a57-1c1b2d3e4f50", "hostname": "ci-instance.example.org", "name": "ci-instance",
		"public_keys": map[string]any{"mykey": authorized},
		"keys":        []any{map[string]any{"name": "mykey", "type": "ssh", "data": authorized}},
	}
	if adminPass != "" {
		meta["admin_pass"] = adminPass
	}
	return &instanceMetadata{key: key, meta: meta,
		userData: "#ps1_sysnative\r\nNew-Item -ItemType Directory -Force -Path C:\\ProgramData\\ci | Out-Null\r\nSet-Content -Path C:\\ProgramData\\ci\\marker.txt -Value 'instance 0b5f8c6e'\r\n"}
}

// configDrive lays the metadata out as a mounted config drive.
func (md *instanceMetadata) configDrive(t *testing.T, label string) Volume {
	t.Helper()
	dir := t.TempDir()
	latest := filepath.Join(dir, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(md.meta)
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(latest, "user_data"), []byte(md.userData), 0o644); err != nil {
		t.Fatal(err)
	}
	return Volume{Label: label, Dir: dir}
}

// novaAPI is the OpenStack metadata API as Nova serves it, with the
// password endpoint (409 once a password is stored).
type novaAPI struct {
	md *instanceMetadata

	mu       sync.Mutex
	password string
	posts    int
}

func (n *novaAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case r.URL.Path == "/openstack/latest/meta_data.json" || r.URL.Path == "/openstack/2013-04-04/meta_data.json":
		_ = json.NewEncoder(w).Encode(n.md.meta)
	case r.URL.Path == "/openstack/latest/user_data":
		_, _ = io.WriteString(w, n.md.userData)
	case r.URL.Path == "/openstack/2013-04-04/password" && r.Method == http.MethodGet:
		_, _ = io.WriteString(w, n.password)
	case r.URL.Path == "/openstack/2013-04-04/password" && r.Method == http.MethodPost:
		b, _ := io.ReadAll(r.Body)
		n.posts++
		if n.password != "" {
			http.Error(w, "Password already set.", http.StatusConflict)
			return
		}
		n.password = string(b)
	default:
		http.NotFound(w, r)
	}
}

// logLine is cloudbase-init's serial log format.
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ (DEBUG|INFO|WARNING|ERROR) cloudbaseinit(\.[a-z_]+)+ \[-\] `)

func checkLogFormat(t *testing.T, console string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimRight(console, "\r\n"), "\r\n") {
		if !logLine.MatchString(l) {
			t.Errorf("console line %q is not in cloudbase-init's format", l)
		}
	}
}

func reboot(t *testing.T, m *Machine) *Machine {
	t.Helper()
	opts := m.opts
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return newMachine(t, opts)
}

func TestCloudbaseInitFromConfigDrive(t *testing.T) {
	m := newMachine(t, Options{})
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, ""))
	md := newInstanceMetadata(t, "Inst-Pw-1234")
	other := newInstanceMetadata(t, "")
	other.meta["hostname"] = "wrong-drive"
	var console bytes.Buffer
	cds := []Volume{other.configDrive(t, "DATA"), md.configDrive(t, "config-2")}

	res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: cds})
	if err != nil {
		t.Fatal(err)
	}
	log := console.String()
	checkLogFormat(t, log)
	if res.Service != "ConfigDriveService" || !res.Reboot || res.InstanceID != "0b5f8c6e-6d3a-4f5e-9a57-1c1b2d3e4f50" {
		t.Errorf("result %+v", res)
	}
	for _, want := range []string{"INFO cloudbaseinit.init [-] Metadata service loaded: 'ConfigDriveService'", "Executing plugin 'SetHostNamePlugin'", "Setting hostname: ci-instance", "INFO cloudbaseinit.init [-] Rebooting"} {
		if !strings.Contains(log, want) {
			t.Errorf("console lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Executing plugin 'CreateUserPlugin'") || strings.Contains(log, "Plugins execution done") {
		t.Errorf("plugins ran on after the reboot request:\n%s", log)
	}
	if got := run(t, m, "hostname"); got.stdout == "CI-INSTANCE\r\n" {
		t.Error("the new computer name is active before the reboot")
	}

	m = reboot(t, m)
	expect(t, run(t, m, "hostname"), 0, "ci-instance\r\n", "")
	console.Reset()
	res, err = m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: cds})
	if err != nil {
		t.Fatal(err)
	}
	log = console.String()
	checkLogFormat(t, log)
	for _, want := range []string{"Plugin 'SetHostNamePlugin' execution already done, skipping", "Executing plugin 'CreateUserPlugin'",
		"Creating user \"Admin\" and setting password", "Executing plugin 'SetUserSSHPublicKeysPlugin'", "Executing plugin 'UserDataPlugin'",
		"User_data script ended with return code: 0", "Executing plugin 'SetUserPasswordPlugin'", "Using admin_pass metadata user password",
		"Cannot set the password in the metadata as it is not supported by this service", "INFO cloudbaseinit.init [-] Plugins execution done"} {
		if !strings.Contains(log, want) {
			t.Errorf("console lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Inst-Pw-1234") {
		t.Error("the password is on the console")
	}
	if res.Reboot || res.Passwords["Admin"] != "Inst-Pw-1234" {
		t.Errorf("result reboot %v, password injected %v", res.Reboot, res.Passwords["Admin"] == "Inst-Pw-1234")
	}
	// first_logon_behaviour is left at clear_text_injected_only: the
	// injected admin_pass must be changed at the next logon.
	r := run(t, m, "net user Admin")
	if r.code != 0 || !strings.Contains(r.stdout, "User name                    Admin") || !strings.Contains(r.stdout, "*Administrators") || !strings.Contains(r.stdout, "Password expires             Now") {
		t.Errorf("net user Admin: %v", r)
	}
	if !m.PasswordMustChange("Admin") {
		t.Error("the injected password need not be changed")
	}
	keys, err := m.FS().ReadFile(`C:\Users\Admin\.ssh\authorized_keys`)
	if err != nil || string(keys) != strings.TrimSpace(md.meta["keys"].([]any)[0].(map[string]any)["data"].(string))+"\r\n" {
		t.Errorf("authorized_keys %q, %v", keys, err)
	}
	expect(t, run(t, m, `type C:\ProgramData\ci\marker.txt`), 0, "instance 0b5f8c6e\r\n", "")
	if left, _ := m.FS().ReadDir(`C:\Windows\Temp`); len(left) != 2 { // the MSI and its log
		t.Errorf("C:\\Windows\\Temp holds %d entries; the user data script is removed after it ran", len(left))
	}

	// A later boot finds every plugin done.
	m = reboot(t, m)
	console.Reset()
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: cds}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(console.String(), "Executing plugin '") || !strings.Contains(console.String(), "Plugins execution done") {
		t.Errorf("third boot:\n%s", console.String())
	}
}

func TestCloudbaseInitHTTPServicePostsThePasswordOnce(t *testing.T) {
	m := newMachine(t, Options{})
	md := newInstanceMetadata(t, "")
	api := &novaAPI{md: md}
	srv := httptest.NewServer(api)
	defer srv.Close()
	installCloudbaseInit(t, m, cloudbaseConf(httpService+","+configDriveService, "allow_reboot=false\n[openstack]\nmetadata_base_url="+srv.URL+"/\n"))
	var console bytes.Buffer
	res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{md.configDrive(t, "config-2")}})
	if err != nil {
		t.Fatal(err)
	}
	log := console.String()
	checkLogFormat(t, log)
	if res.Service != "HttpService" || res.Reboot {
		t.Errorf("result %+v", res)
	}
	for _, want := range []string{"Metadata service loaded: 'HttpService'", "Executing http request GET at " + srv.URL + "/openstack/latest/meta_data.json",
		"Posting data to " + srv.URL + "/openstack/2013-04-04/password", "Plugins execution done"} {
		if !strings.Contains(log, want) {
			t.Errorf("console lacks %q:\n%s", want, log)
		}
	}
	ct, err := base64.StdEncoding.DecodeString(api.password)
	if err != nil {
		t.Fatalf("posted %q: %v", api.password, err)
	}
	plain, err := rsa.DecryptPKCS1v15(nil, md.key, ct)
	if err != nil || string(plain) != res.Passwords["Admin"] || len(plain) != 20 {
		t.Errorf("decrypted %d bytes (%v); the account's password has %d", len(plain), err, len(res.Passwords["Admin"]))
	}
	// Not injected (generated, and posted encrypted): with
	// clear_text_injected_only it stays valid.
	if r := run(t, m, "net user Admin"); !strings.Contains(r.stdout, "Password expires             Never") || m.PasswordMustChange("Admin") {
		t.Errorf("net user Admin: %v", r)
	}
	// Run again with the plugin's state gone: the password is set in the
	// metadata already, nothing is posted.
	if err := m.RegistryFor("vagrant").DeleteValue(cloudbaseStateKey+`\`+res.InstanceID+`\Plugins`, "SetUserPasswordPlugin"); err != nil {
		t.Fatal(err)
	}
	console.Reset()
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console}); err != nil {
		t.Fatal(err)
	}
	if api.posts != 1 || !strings.Contains(console.String(), "User's password already set in the instance metadata") {
		t.Errorf("%d posts:\n%s", api.posts, console.String())
	}
}

func TestCloudbaseInitWithoutMetadata(t *testing.T) {
	m := newMachine(t, Options{})
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	installCloudbaseInit(t, m, cloudbaseConf(httpService+","+configDriveService, "retry_count=1\nmetadata_base_url="+url+"/\n"))
	var console bytes.Buffer
	// A CD without the config-2 label is no config drive.
	res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{newInstanceMetadata(t, "").configDrive(t, "CDROM")}})
	if err != nil {
		t.Fatal(err)
	}
	log := console.String()
	checkLogFormat(t, log)
	if res.Service != "" || !strings.Contains(log, "ERROR cloudbaseinit.init [-] No metadata service found") ||
		!strings.Contains(log, "Metadata not found at URL '"+url+"/'") || strings.Contains(log, "Executing plugin '") {
		t.Errorf("result %+v, console:\n%s", res, log)
	}
	if r := run(t, m, "net user Admin"); r.code != 2 || !strings.Contains(r.stderr, "The user name could not be found.") {
		t.Errorf("net user Admin: %v", r)
	}
}

// config_drive_cdrom and its kin only add to config_drive_types and
// config_drive_locations, whose defaults hold every type and location
// (baseconfigdrive.py _preprocess_options): config_drive_cdrom=false alone
// still finds a config-2 CD. Leaving cdrom and partition out of the
// locations does not.
func TestCloudbaseInitConfigDriveTypesAndLocations(t *testing.T) {
	md := newInstanceMetadata(t, "")
	for _, c := range []struct {
		name, extra string
		found       bool
		want        string
	}{
		{"defaults", "", true, "Config Drive found on E:\\"},
		{"deprecated cdrom off", "config_drive_cdrom=false\n", true, "Config Drive found on"},
		{"cdrom location only", "[config_drive]\nlocations=cdrom\ntypes=iso\nraw_hdd=false\nvfat=false\n", true, "Looking for Config Drive iso in cdrom with expected label config-2"},
		{"volumes only", "config_drive_cdrom=false\nconfig_drive_raw_hhd=false\nconfig_drive_vfat=false\nconfig_drive_types=vfat\nconfig_drive_locations=partition\n", true, "Config Drive found on \\\\?\\Volume{"},
		{"disks only", "config_drive_cdrom=false\nconfig_drive_locations=hdd\n", false, "Looking for Config Drive vfat in hdd"},
		{"invalid type", "config_drive_types=iso,udf\n", false, "Failed to load metadata service 'cloudbaseinit.metadata.services.configdrive.ConfigDriveService'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, Options{})
			installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "allow_reboot=false\n"+c.extra))
			var console bytes.Buffer
			// The first CD is another medium, the second the config drive.
			cds := []Volume{newInstanceMetadata(t, "").configDrive(t, "VIRTIO"), md.configDrive(t, "config-2")}
			res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: cds})
			if err != nil {
				t.Fatal(err)
			}
			log := console.String()
			checkLogFormat(t, log)
			if (res.Service == "ConfigDriveService") != c.found || !strings.Contains(log, c.want) || strings.Contains(log, "No metadata service found") == c.found {
				t.Errorf("service %q, want found %v and %q; console:\n%s", res.Service, c.found, c.want, log)
			}
		})
	}
}

func TestCloudbaseInitUserDataRefusesUnknownCommands(t *testing.T) {
	var f failures
	m := newMachine(t, Options{Failf: f.Failf})
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "allow_reboot=false\n"))
	md := newInstanceMetadata(t, "Inst-Pw-1234")
	md.userData = "#ps1_sysnative\r\nInvoke-Frobnication -Level 3\r\nSet-Content -Path C:\\ProgramData\\after.txt -Value x\r\n"
	var console bytes.Buffer
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{md.configDrive(t, "config-2")}}); err != nil {
		t.Fatal(err)
	}
	f.expectReported(t, "Invoke-Frobnication")
	if ok, _ := m.FS().exists(`C:\ProgramData\after.txt`); ok {
		t.Error("the script went on after a command PowerShell does not know")
	}
	if !strings.Contains(console.String(), "User_data script ended with return code: 1") {
		t.Errorf("console:\n%s", console.String())
	}

	// User data in a format the stand-in does not model is reported too.
	m2 := newMachine(t, Options{Failf: f.Failf})
	installCloudbaseInit(t, m2, cloudbaseConf(configDriveService, "allow_reboot=false\n"))
	md.userData = "#cloud-config\nruncmd: [x]\n"
	if _, err := m2.RunCloudbaseInit(context.Background(), CloudbaseInitRun{CDs: []Volume{md.configDrive(t, "config-2")}}); err != nil {
		t.Fatal(err)
	}
	f.expectReported(t, "#cloud-config")
}

func TestCloudbaseInitUnmodelledPluginIsReported(t *testing.T) {
	var f failures
	m := newMachine(t, Options{Failf: f.Failf})
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "plugins=cloudbaseinit.plugins.windows.ntpclient.NTPClientPlugin\n"))
	var console bytes.Buffer
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{newInstanceMetadata(t, "").configDrive(t, "config-2")}}); err != nil {
		t.Fatal(err)
	}
	f.expectReported(t, "NTPClientPlugin")
	if !strings.Contains(console.String(), "ERROR cloudbaseinit.init [-] plugin 'NTPClientPlugin' failed") {
		t.Errorf("console:\n%s", console.String())
	}
}

func TestCloudbaseInitNotInstalled(t *testing.T) {
	m := newMachine(t, Options{})
	if _, _, ok := m.CloudbaseInitService(); ok {
		t.Error("a fresh machine has cloudbase-init")
	}
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{}); err == nil {
		t.Error("cloudbase-init ran without being installed")
	}
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, ""))
	conf, auto, ok := m.CloudbaseInitService()
	if !ok || !auto || conf != CloudbaseInitDir+`\conf\cloudbase-init.conf` {
		t.Errorf("service: %q, automatic %v, installed %v", conf, auto, ok)
	}
}

func TestSetContent(t *testing.T) {
	m := newMachine(t, Options{})
	expect(t, ps(t, m, `Set-Content -Path C:\ProgramData\a.txt -Value 'one'; Set-Content C:\ProgramData\a.txt 'two','three'; Get-Content C:\ProgramData\a.txt`), 0, "two\r\nthree\r\n", "")
	b, _ := m.FS().ReadFile(`C:\ProgramData\a.txt`)
	if string(b) != "two\r\nthree\r\n" {
		t.Errorf("file %q", b)
	}
	r := ps(t, m, `Set-Content -Path C:\NoSuchDir\a.txt -Value x`)
	if r.code != 1 || !strings.Contains(r.stderr, "Could not find a part of the path") {
		t.Errorf("missing directory: %v", r)
	}
}

func TestNetUser(t *testing.T) {
	m := newMachine(t, Options{})
	r := run(t, m, "net user")
	if r.code != 0 || !strings.Contains(r.stdout, "vagrant") || !strings.Contains(r.stdout, "The command completed successfully.") {
		t.Errorf("net user: %v", r)
	}
	r = run(t, m, "net user nobody")
	if r.code != 2 || !strings.Contains(r.stderr, "NET HELPMSG 2221") {
		t.Errorf("net user nobody: %v", r)
	}
}

// SetUserPasswordPlugin._change_logon_behaviour: "no" never forces a
// password change, "always" always does, and clear_text_injected_only
// (the default) does when the password is the metadata's admin_pass.
func TestCloudbaseInitFirstLogonBehaviour(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		adminPass   string
		mustChange  bool
	}{
		{"default, injected", "", "Inst-Pw-1234", true},
		{"default, generated", "", "", false},
		{"clear_text_injected_only, injected", "first_logon_behaviour=clear_text_injected_only\n", "Inst-Pw-1234", true},
		{"clear_text_injected_only, injection off", "first_logon_behaviour=clear_text_injected_only\ninject_user_password=false\n", "Inst-Pw-1234", false},
		{"no, injected", "first_logon_behaviour=no\n", "Inst-Pw-1234", false},
		{"always, generated", "first_logon_behaviour=always\n", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, Options{})
			installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "allow_reboot=false\n"+c.extra))
			md := newInstanceMetadata(t, c.adminPass)
			var console bytes.Buffer
			res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{md.configDrive(t, "config-2")}})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.PasswordMustChange("Admin"); got != c.mustChange {
				t.Errorf("must change the password: %v, want %v\n%s", got, c.mustChange, console.String())
			}
			injected := res.Passwords["Admin"] == c.adminPass
			if c.adminPass != "" && injected != !strings.Contains(c.extra, "inject_user_password=false") {
				t.Errorf("password injected: %v", injected)
			}
			if len(res.Passwords["Admin"]) == 0 {
				t.Error("no password set")
			}
		})
	}
}

// An invalid option value stops the service (oslo.config raises when it
// is read); an option the model does not know is reported.
func TestCloudbaseInitOptionsAreChecked(t *testing.T) {
	var f failures
	m := newMachine(t, Options{Failf: f.Failf})
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "first_logon_behaviour=never\n"))
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{}); err == nil || !strings.Contains(err.Error(), `first_logon_behaviour: "never" is not one of clear_text_injected_only, no, always`) {
		t.Errorf("err = %v", err)
	}
	f.expectReported(t, "first_logon_behaviour")

	m2 := newMachine(t, Options{Failf: f.Failf})
	installCloudbaseInit(t, m2, cloudbaseConf(configDriveService, "allow_reboot=false\nactivate_windows=true\n"))
	if _, err := m2.RunCloudbaseInit(context.Background(), CloudbaseInitRun{CDs: []Volume{newInstanceMetadata(t, "").configDrive(t, "config-2")}}); err != nil {
		t.Fatal(err)
	}
	f.expectReported(t, `"activate_windows"`)

	m3 := newMachine(t, Options{Failf: f.Failf})
	installCloudbaseInit(t, m3, cloudbaseConf(configDriveService, "allow_reboot=maybe\n"))
	if _, err := m3.RunCloudbaseInit(context.Background(), CloudbaseInitRun{}); err == nil || !strings.Contains(err.Error(), "allow_reboot") {
		t.Errorf("err = %v", err)
	}
	f.expectReported(t, "allow_reboot")
}

// CreateUserPlugin shares the password only of an account it creates:
// for an existing one SetUserPasswordPlugin draws another.
func TestCloudbaseInitExistingAccountGetsTheSetUserPasswordPluginsPassword(t *testing.T) {
	m := newMachine(t, Options{})
	if err := m.createAccount("Admin"); err != nil {
		t.Fatal(err)
	}
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "allow_reboot=false\n"))
	var console bytes.Buffer
	res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{newInstanceMetadata(t, "").configDrive(t, "config-2")}})
	if err != nil {
		t.Fatal(err)
	}
	log := console.String()
	if !strings.Contains(log, `Setting password for existing user "Admin"`) || !strings.Contains(log, "Generating a random user password") || len(res.Passwords["Admin"]) != 20 {
		t.Errorf("password of %d characters; console:\n%s", len(res.Passwords["Admin"]), log)
	}
}

// execcmd.py get_plugin_return_value: a user data script's exit code
// 1001 asks for a reboot, 1002 runs the plugin again at the next boot.
func TestCloudbaseInitUserDataExitCodes(t *testing.T) {
	m := newMachine(t, Options{})
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "plugins=cloudbaseinit.plugins.common.userdata.UserDataPlugin\n"))
	md := newInstanceMetadata(t, "")
	md.userData = "#ps1\r\nexit 1002\r\n"
	cds := []Volume{md.configDrive(t, "config-2")}
	var console bytes.Buffer
	res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: cds})
	if err != nil {
		t.Fatal(err)
	}
	st, _, _ := m.RegistryFor("vagrant").DWORD(cloudbaseStateKey+`\`+res.InstanceID+`\Plugins`, "UserDataPlugin")
	if res.Reboot || st != pluginExecuteOnNextBoot || !strings.Contains(console.String(), "User_data script ended with return code: 1002") {
		t.Errorf("reboot %v, state %d; console:\n%s", res.Reboot, st, console.String())
	}
	md.userData = "#ps1\r\nexit 1001\r\n"
	cds = []Volume{md.configDrive(t, "config-2")}
	if res, err = m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{CDs: cds}); err != nil {
		t.Fatal(err)
	}
	st, _, _ = m.RegistryFor("vagrant").DWORD(cloudbaseStateKey+`\`+res.InstanceID+`\Plugins`, "UserDataPlugin")
	if !res.Reboot || st != pluginExecutionDone {
		t.Errorf("reboot %v, state %d", res.Reboot, st)
	}
}

// maasAPI is MAAS's metadata API for one node (src/metadataserver/api.py
// MetaDataHandler, UserDataHandler): OAuth-signed requests only; x509
// answers what x509Status says.
type maasAPI struct {
	mu         sync.Mutex
	x509Status int
	requests   []string
	badAuth    []string
}

func (a *maasAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.URL.Path)
	if auth := r.Header.Get("Authorization"); !strings.Contains(auth, `oauth_signature_method="PLAINTEXT"`) || !strings.Contains(auth, `oauth_consumer_key="ck"`) ||
		!strings.Contains(auth, `oauth_token="tk"`) || !strings.Contains(auth, `oauth_signature="%26ts"`) {
		a.badAuth = append(a.badAuth, auth)
		http.Error(w, "Authorization Error: 'Invalid access token'", http.StatusUnauthorized)
		return
	}
	switch strings.TrimPrefix(r.URL.Path, "/MAAS/metadata/2012-03-01/") {
	case "meta-data/":
		_, _ = io.WriteString(w, "instance-id\nlocal-hostname\npublic-keys\nvendor-data\nx509")
	case "meta-data/instance-id":
		_, _ = io.WriteString(w, "node-4y3h7a")
	case "meta-data/local-hostname":
		_, _ = io.WriteString(w, "maas-node.maas")
	case "meta-data/public-keys":
		_, _ = io.WriteString(w, "")
	case "meta-data/x509":
		w.WriteHeader(a.x509Status)
	default:
		http.NotFound(w, r)
	}
}

// MaaSHttpService.get_client_auth_certs reads meta-data/x509: MAAS
// answers 200 (empty without certificates) and the default
// ConfigWinRMCertificateAuthPlugin is done; a 404 raises, so the plugin
// fails and runs (and fails) again at every boot.
func TestCloudbaseInitMAASClientCertificates(t *testing.T) {
	for _, c := range []struct {
		status int
		failed bool
	}{{http.StatusOK, false}, {http.StatusNotFound, true}} {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			api := &maasAPI{x509Status: c.status}
			srv := httptest.NewServer(api)
			defer srv.Close()
			m := newMachine(t, Options{})
			// A base URL without a trailing slash loses its last segment
			// in urljoin: MAAS's documented URL ends in a slash.
			installCloudbaseInit(t, m, cloudbaseConf("cloudbaseinit.metadata.services.maasservice.MaaSHttpService",
				"allow_reboot=false\nretry_count=0\nplugins="+modelledPlugins+",cloudbaseinit.plugins.windows.winrmcertificateauth.ConfigWinRMCertificateAuthPlugin\n"+
					"maas_metadata_url="+srv.URL+"/MAAS/metadata/\nmaas_oauth_consumer_key=ck\nmaas_oauth_consumer_secret=''\nmaas_oauth_token_key=tk\nmaas_oauth_token_secret=ts\n"))
			for boot := 1; boot <= 2; boot++ {
				var console bytes.Buffer
				res, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console})
				if err != nil {
					t.Fatal(err)
				}
				log := console.String()
				checkLogFormat(t, log)
				if res.Service != "MaaSHttpService" || res.InstanceID != "node-4y3h7a" {
					t.Fatalf("result %+v\n%s", res, log)
				}
				// At later boots SetUserPasswordPlugin is done and shares no
				// password, and MAAS gives none: the plugin fails earlier.
				why := "404 Client Error: Not Found for url: " + srv.URL + "/MAAS/metadata/2012-03-01/meta-data/x509"
				if boot > 1 {
					why = "Cannot execute plugin as the password has not been set"
				}
				failed := strings.Contains(log, "plugin 'ConfigWinRMCertificateAuthPlugin' failed with error '"+why)
				ran := strings.Contains(log, "Executing plugin 'ConfigWinRMCertificateAuthPlugin'")
				if failed != c.failed || ran != (boot == 1 || c.failed) {
					t.Errorf("boot %d: plugin ran %v, failed %v\n%s", boot, ran, failed, log)
				}
				if !c.failed && boot == 1 && !strings.Contains(log, "WinRM certificate authentication cannot be configured as a certificate has not been provided in the metadata") {
					t.Errorf("console:\n%s", log)
				}
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			if len(api.badAuth) > 0 {
				t.Errorf("requests without a valid OAuth PLAINTEXT signature: %q", api.badAuth)
			}
		})
	}
}
