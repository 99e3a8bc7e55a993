package sysprep

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func prepare(t *testing.T, raw map[string]interface{}) (*Config, error) {
	t.Helper()
	var c Config
	err := c.Prepare(raw)
	return &c, err
}

func TestConfigDefaults(t *testing.T) {
	c, err := prepare(t, map[string]interface{}{"winrm_password": "Pw-1234"})
	if err != nil {
		t.Fatal(err)
	}
	if c.WinRMUsername != "Administrator" || c.Timeout != 30*time.Minute || c.WinRMTimeout != 30*time.Minute ||
		c.CPUs != 2 || c.MemoryMB != 4096 || c.Accelerator != "auto" || c.HostPortMin != 2222 || c.HostPortMax != 4444 {
		t.Errorf("defaults: %+v", c)
	}
	if strings.Join(c.RemoveAppxPackages, ",") != "Microsoft.OneDriveSync,Microsoft.Edge.GameAssist" {
		t.Errorf("remove_appx_packages = %q", c.RemoveAppxPackages)
	}
	c, err = prepare(t, map[string]interface{}{"winrm_password": "Pw-1234", "remove_appx_packages": []string{}})
	if err != nil || len(c.RemoveAppxPackages) != 0 {
		t.Errorf("remove_appx_packages = [] gave %q, %v", c.RemoveAppxPackages, err)
	}
}

// Each bad value gives one error naming its field and what is accepted,
// and the password never appears in an error.
func TestConfigErrors(t *testing.T) {
	msi := filepath.Join(t.TempDir(), "CloudbaseInitSetup_Stable_x64.msi")
	if err := os.WriteFile(msi, []byte("MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	notMSI := filepath.Join(t.TempDir(), "setup.exe")
	if err := os.WriteFile(notMSI, []byte("MZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  map[string]interface{}
		want string
	}{
		{"no password", map[string]interface{}{}, "winrm_password: required"},
		{"timeout", map[string]interface{}{"timeout": "-1m"}, `timeout: -1m0s is negative`},
		{"winrm_timeout", map[string]interface{}{"winrm_timeout": "-5s"}, "winrm_timeout: -5s is negative"},
		{"vm_name", map[string]interface{}{"vm_name": "a/b"}, `vm_name: "a/b" must be a file name`},
		{"appx", map[string]interface{}{"remove_appx_packages": []string{"Microsoft.OneDrive Sync"}}, `remove_appx_packages: "Microsoft.OneDrive Sync" is not an Appx package name`},
		{"cpus", map[string]interface{}{"cpus": 100}, "cpus: 100 is out of range"},
		{"cpus = 0", map[string]interface{}{"cpus": 0}, "cpus: 0 is out of range; use 1 to 64"},
		{"memory = 0", map[string]interface{}{"memory": 0}, "memory: 0 MiB is out of range"},
		{"accelerator", map[string]interface{}{"accelerator": "hvf"}, `accelerator: "hvf" is not supported`},
		{"efi code", map[string]interface{}{"efi_firmware_code": "/nonexistent/OVMF_CODE.fd"}, "efi_firmware_code: stat /nonexistent/OVMF_CODE.fd"},
		{"msi missing", map[string]interface{}{"cloudbase_init": map[string]interface{}{}}, "cloudbase_init.msi: required"},
		{"msi not msi", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": notMSI}}, "is not an .msi file"},
		{"msi URL without checksum", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": "https://cloudbase.it/downloads/CloudbaseInitSetup_Stable_x64.msi"}},
			"cloudbase_init.msi_checksum: required with an msi URL"},
		{"msi URL not an msi", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": "https://cloudbase.it/downloads/setup.exe", "msi_checksum": "sha256:" + strings.Repeat("a", 64)}},
			"does not name an .msi file"},
		{"msi checksum malformed", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "msi_checksum": "md5:" + strings.Repeat("a", 32)}},
			`cloudbase_init.msi_checksum: "md5:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is not a SHA-256`},
		{"msi checksum mismatch", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "msi_checksum": "sha256:" + strings.Repeat("b", 64)}},
			"cloudbase_init.msi_checksum: " + msi + " has SHA-256 "},
		{"metadata", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "metadata_services": []string{"ConfigDrive"}}},
			`cloudbase_init.metadata_services: "ConfigDrive" is not a Python class path`},
		{"plugins", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "plugins": []string{"x y"}}}, `cloudbase_init.plugins: "x y"`},
		{"option name", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "options": map[string]string{"Bad-Key": "1"}}},
			`cloudbase_init.options: "Bad-Key" is not a cloudbase-init option name`},
		{"option owned", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "options": map[string]string{"metadata_services": "x.y"}}},
			`cloudbase_init.options: "metadata_services" is set by its own field`},
		{"option multiline", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "options": map[string]string{"a": "1\n2"}}},
			`the value of "a" spans lines`},
		{"first logon", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "first_logon_behaviour": "never"}},
			`cloudbase_init.first_logon_behaviour: "never" is not supported; use "no", "clear_text_injected_only" or "always"`},
		{"first logon option", map[string]interface{}{"cloudbase_init": map[string]interface{}{"msi": msi, "options": map[string]string{"first_logon_behaviour": "always"}}},
			`cloudbase_init.options: "first_logon_behaviour" is set by its own field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := map[string]interface{}{"winrm_password": "Secret-Pw-77"}
			if tc.name == "no password" {
				raw = map[string]interface{}{}
			}
			for k, v := range tc.raw {
				raw[k] = v
			}
			_, err := prepare(t, raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Secret-Pw-77") {
				t.Error("the password is in the error")
			}
		})
	}
}

func TestConfigCloudbaseInitDefaults(t *testing.T) {
	msi := filepath.Join(t.TempDir(), "CloudbaseInitSetup_Stable_x64.msi")
	if err := os.WriteFile(msi, []byte("MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := prepare(t, map[string]interface{}{"winrm_password": "Pw-1234", "cloudbase_init": map[string]interface{}{"msi": msi}})
	if err != nil {
		t.Fatal(err)
	}
	if c.CloudbaseInit.Username != "Admin" || strings.Join(c.CloudbaseInit.Groups, ",") != "Administrators" || c.CloudbaseInit.FirstLogonBehaviour != "no" {
		t.Errorf("cloudbase_init defaults: %+v", c.CloudbaseInit)
	}
}
