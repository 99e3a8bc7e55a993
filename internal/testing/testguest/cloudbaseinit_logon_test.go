package testguest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// cloudbaseInitFirstBoot installs cloudbase-init on a new machine in
// stateDir with first_logon_behaviour set as given (unset: "") and runs
// it on a config drive whose admin_pass is password.
func cloudbaseInitFirstBoot(t *testing.T, stateDir, firstLogon, password string) {
	t.Helper()
	m, err := winsim.New(winsim.Options{StateDir: stateDir, Users: []string{DefaultUser}, Failf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	if code, err := m.ConsoleSystem().Processes().Run(context.Background(), "msiexec.exe", []string{"/i", `C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, "/qn"}, nil, nil); err != nil || code != 0 {
		t.Fatalf("msiexec: %d %v", code, err)
	}
	conf := "[DEFAULT]\r\nusername=Admin\r\ngroups=Administrators\r\nallow_reboot=false\r\n" +
		"metadata_services=cloudbaseinit.metadata.services.configdrive.ConfigDriveService\r\n" +
		"plugins=cloudbaseinit.plugins.windows.createuser.CreateUserPlugin,cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin\r\n"
	if firstLogon != "" {
		conf += "first_logon_behaviour=" + firstLogon + "\r\n"
	}
	if err := m.FS().WriteFile(winsim.CloudbaseInitDir+`\conf\cloudbase-init.conf`, []byte(conf)); err != nil {
		t.Fatal(err)
	}
	drive := t.TempDir()
	latest := filepath.Join(drive, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(map[string]any{"uuid": "6f1c", "hostname": "inst", "admin_pass": password})
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := m.RunCloudbaseInit(context.Background(), winsim.CloudbaseInitRun{CDs: []winsim.Volume{{Label: "config-2", Dir: drive}}})
	if err != nil || res.Passwords["Admin"] != password {
		t.Fatalf("cloudbase-init: %v, injected %v", err, res.Passwords["Admin"] == password)
	}
}

// An account whose password must be changed at the next logon is
// refused over WinRM with the 401 of a wrong password, Basic and NTLM
// alike: Windows fails its logon with STATUS_PASSWORD_MUST_CHANGE and
// only an interactive logon can change the password. With
// first_logon_behaviour = no the injected password logs on.
func TestWinRMRefusesAnAccountThatMustChangeItsPassword(t *testing.T) {
	const password = "Inst-Pw-4711"
	for _, c := range []struct {
		firstLogon string
		refused    bool
	}{{"", true}, {"clear_text_injected_only", true}, {"no", false}} {
		t.Run("first_logon_behaviour="+c.firstLogon, func(t *testing.T) {
			dir := t.TempDir()
			cloudbaseInitFirstBoot(t, dir, c.firstLogon, password)
			g := StartForTest(t, Options{StateDir: dir, Accounts: map[string]string{"Admin": password}})
			h, p := g.HostPort()
			basic, err := winrm.NewClient(&winrm.Endpoint{Host: h, Port: p}, "Admin", password)
			if err != nil {
				t.Fatal(err)
			}
			params := winrm.NewParameters("PT5S", "en-US", 153600)
			params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
			ntlm, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: h, Port: p}, "Admin", password, params)
			if err != nil {
				t.Fatal(err)
			}
			for name, cl := range map[string]*winrm.Client{"Basic": basic, "NTLM": ntlm} {
				r := runCmd(t, cl, "echo logged-on", 10*time.Second)
				if c.refused {
					if r.err == nil || r.err.Error() != "http response error: 401 - invalid content type" || strings.Contains(r.stdout, "logged-on") {
						t.Errorf("%s: %v, want the 401 of a refused logon", name, r)
					}
				} else if r.err != nil || r.stdout != "logged-on\r\n" {
					t.Errorf("%s: %v", name, r)
				}
			}
			// The build account is not affected.
			if r := mustRun(t, client(t, g, "PT5S", 0), "echo build"); r.stdout != "build\r\n" {
				t.Errorf("build account: %v", r)
			}
		})
	}
}
