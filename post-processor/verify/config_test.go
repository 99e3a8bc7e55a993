package verify

import (
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	if err := c.Prepare(map[string]interface{}{}); err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeOpenStack || !*c.ConfigDrive || *c.MetadataService || c.Hostname != "winbake-verify" ||
		c.Username != "Admin" || !*c.KeepWinRM || !*c.InjectAdminPassword || len(c.AdminPassword) != 20 {
		t.Errorf("defaults: %+v", c)
	}
	var maas Config
	if err := maas.Prepare(map[string]interface{}{"mode": "maas"}); err != nil {
		t.Fatal(err)
	}
	if *maas.ConfigDrive || !*maas.MetadataService {
		t.Errorf("maas defaults: config drive %v, metadata service %v", *maas.ConfigDrive, *maas.MetadataService)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]interface{}
		want string
	}{
		{map[string]interface{}{"mode": "aws"}, `mode: "aws" is not supported`},
		{map[string]interface{}{"mode": "maas", "config_drive": true}, "config_drive: MAAS gives no config drive"},
		{map[string]interface{}{"config_drive": false}, "config_drive, metadata_service: both are false"},
		{map[string]interface{}{"check_password_post": true}, "check_password_post: the password is posted to the metadata service"},
		{map[string]interface{}{"hostname": "much-too-long-hostname"}, `hostname: "much-too-long-hostname" is not a Windows computer name`},
		{map[string]interface{}{"username": `a\b`}, "username:"},
		{map[string]interface{}{"build_passwords": []string{""}}, "build_passwords: an empty password"},
		{map[string]interface{}{"check": []map[string]interface{}{{"command": "hostname"}}}, "check[0].contains: required"},
		{map[string]interface{}{"check": []map[string]interface{}{{"contains": "x"}}}, "check[0].command: required"},
		{map[string]interface{}{"timeout": "-1m"}, "timeout: -1m0s is negative"},
		{map[string]interface{}{"winrm_timeout": "-1m"}, "winrm_timeout: -1m0s is negative"},
		{map[string]interface{}{"cpus": 65}, "cpus"},
		{map[string]interface{}{"cpus": 0}, "cpus: 0 is out of range; use 1 to 64"},
		{map[string]interface{}{"inject_admin_password": false}, "inject_admin_password: false leaves WinRM only the password cloudbase-init posts to the metadata service; set metadata_service = true, or keep_winrm = false"},
		{map[string]interface{}{"mode": "maas", "inject_admin_password": false}, "inject_admin_password: false leaves WinRM only the password cloudbase-init posts, and MAAS takes none"},
	} {
		var c Config
		err := c.Prepare(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.raw, err, tc.want)
		}
	}
}

// Without xorriso the config drive cannot be written: packer validate
// says so.
func TestConfigDriveNeedsXorriso(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var c Config
	err := c.Prepare(map[string]interface{}{})
	if err == nil || !strings.Contains(err.Error(), "config_drive: writing the config drive needs xorriso on PATH") {
		t.Errorf("openstack without xorriso: %v", err)
	}
	var maas Config
	if err := maas.Prepare(map[string]interface{}{"mode": "maas"}); err != nil {
		t.Errorf("maas needs no config drive: %v", err)
	}
	var noDrive Config
	if err := noDrive.Prepare(map[string]interface{}{"config_drive": false, "metadata_service": true}); err != nil {
		t.Errorf("config_drive = false: %v", err)
	}
}

// Without an injected password WinRM logs on with the one cloudbase-init
// posts: fine with the metadata service, or without WinRM.
func TestConfigWithoutInjectedPassword(t *testing.T) {
	for _, raw := range []map[string]interface{}{
		{"inject_admin_password": false, "metadata_service": true},
		{"inject_admin_password": false, "keep_winrm": false},
		{"mode": "maas", "inject_admin_password": false, "keep_winrm": false},
	} {
		var c Config
		if err := c.Prepare(raw); err != nil {
			t.Errorf("%v: %v", raw, err)
		}
	}
}

func TestCheckNameDefaultsToCommand(t *testing.T) {
	var c Config
	err := c.Prepare(map[string]interface{}{"check": []map[string]interface{}{{"command": "tzutil /g", "contains": "UTC"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Checks[0].Name != "tzutil /g" {
		t.Errorf("check name %q", c.Checks[0].Name)
	}
}

func TestReportTableAndFailures(t *testing.T) {
	r := &Report{Image: "img.json", Mode: ModeOpenStack, Instance: "u"}
	r.pass("first boot completes", "console: setup: complete")
	r.fail("updates installed", "missing: KB5034439 (not in dism /Get-Packages)")
	r.add("user data ran", ResultNotRun, "WinRM is not meant to stay in this image")
	if got := r.Failed(); len(got) != 1 || got[0] != "updates installed" {
		t.Errorf("failed %v", got)
	}
	table := r.Table()
	for _, want := range []string{"CHECK", "updates installed", "fail", "KB5034439", "FAILED: updates installed"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	dir := t.TempDir()
	jsonPath, textPath, err := r.Save(dir, "img")
	if err != nil || !strings.HasSuffix(jsonPath, "img.verify.json") || !strings.HasSuffix(textPath, "img.verify.txt") {
		t.Errorf("saved %s %s %v", jsonPath, textPath, err)
	}
}
