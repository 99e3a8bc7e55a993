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

func cloudbaseConf(services, extra string) string {
	return "[DEFAULT]\nusername=Admin\ngroups=Administrators\ninject_user_password=true\nconfig_drive_cdrom=true\n" +
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
		json.NewEncoder(w).Encode(n.md.meta)
	case r.URL.Path == "/openstack/latest/user_data":
		io.WriteString(w, n.md.userData)
	case r.URL.Path == "/openstack/2013-04-04/password" && r.Method == http.MethodGet:
		io.WriteString(w, n.password)
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
		"ended with exit code: 0", "Executing plugin 'SetUserPasswordPlugin'", "Using admin_pass metadata user password",
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
	r := run(t, m, "net user Admin")
	if r.code != 0 || !strings.Contains(r.stdout, "User name                    Admin") || !strings.Contains(r.stdout, "*Administrators") || !strings.Contains(r.stdout, "Password expires             Never") {
		t.Errorf("net user Admin: %v", r)
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
	for _, want := range []string{"Metadata service loaded: 'HttpService'", "Getting metadata from: " + srv.URL + "/openstack/latest/meta_data.json",
		"Posting the encrypted password to the metadata service", "Plugins execution done"} {
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
	// Not injected: the user changes the generated password at first logon.
	if r := run(t, m, "net user Admin"); !strings.Contains(r.stdout, "Password expires             Now") {
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

func TestCloudbaseInitConfigDriveDisabled(t *testing.T) {
	m := newMachine(t, Options{})
	installCloudbaseInit(t, m, cloudbaseConf(configDriveService, "config_drive_cdrom=false\n"))
	var console bytes.Buffer
	if _, err := m.RunCloudbaseInit(context.Background(), CloudbaseInitRun{Console: &console, CDs: []Volume{newInstanceMetadata(t, "").configDrive(t, "config-2")}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(console.String(), "No metadata service found") {
		t.Errorf("console:\n%s", console.String())
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
	if !strings.Contains(console.String(), "ended with exit code: 1") {
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
