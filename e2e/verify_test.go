//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type verifyReport struct {
	Image    string
	Instance string `json:"instance_uuid"`
	Passed   bool
	Checks   []struct{ Name, Result, Evidence string }
}

func (r verifyReport) result(name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Result
		}
	}
	return "missing"
}

// One golden stand-in with real Packer under TCG (UEFI with a TPM), two
// post-processor chains: sysprep without cloudbase-init -> verify, which
// fails the cloudbase-init check (nothing reads the config drive or the
// metadata service); sysprep with the cloudbase-init MSI -> verify in
// OpenStack mode with the config drive and the metadata service at
// 169.254.169.254, where every check passes: cloudbase-init reads the
// metadata over QEMU's user network, sets the host name (rebooting once),
// creates the account WinRM logs on with, installs the SSH key, runs the
// user data and posts the password encrypted. Both generalized images are
// unchanged and no instance file is left.
func TestVerifyWithAndWithoutCloudbaseInit(t *testing.T) {
	iso := standinISO(t)
	dir := t.TempDir()
	golden, plain, cloudbase := filepath.Join(dir, "golden"), filepath.Join(dir, "plain"), filepath.Join(dir, "cloudbase")
	// The stand-in's msiexec installs any non-empty CloudbaseInitSetup*.msi
	// as cloudbase-init's MSI does.
	msi := filepath.Join(dir, "CloudbaseInitSetup_x64.msi")
	if err := os.WriteFile(msi, []byte("stand-in cloudbase-init MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	const password = "Verify-e2e-Pw1"
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+golden, "-var", "plain_dir="+plain,
		"-var", "cloudbase_dir="+cloudbase, "-var", "cloudbase_init_msi="+msi,
		"-var", "winrm_password="+password, filepath.Join("testdata", "verify-standin-both.pkr.hcl"))
	noQEMULeft(t, plain)
	noQEMULeft(t, cloudbase)
	if err == nil {
		t.Fatalf("packer build passed although one image has no cloudbase-init:\n%s", log)
	}
	if strings.Contains(log, password) {
		t.Error("the build password appears in the build log")
	}
	for _, want := range []string{"Config drive (config-2)", "throwaway overlay", "Metadata service (openstack) for the guest at http://169.254.169.254/",
		"winbake-verify report for", "cloudbase-init ran its plugins", "check(s) failed", "All checks passed."} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	var r verifyReport
	b := readJSON(t, filepath.Join(plain, "standin.verify.json"), &r)
	if r.Passed || r.result("cloudbase-init ran its plugins") != "fail" || r.result("first boot completes") != "pass" {
		t.Errorf("report without cloudbase-init %s", b)
	}

	var rc verifyReport
	bc := readJSON(t, filepath.Join(cloudbase, "standin.verify.json"), &rc)
	if !rc.Passed {
		serial, _ := os.ReadFile(filepath.Join(cloudbase, "standin.verify-serial.log"))
		t.Errorf("report with cloudbase-init %s\nconsole:\n%s", bc, serial)
	}
	for _, name := range []string{"first boot completes", "cloudbase-init ran its plugins", "WinRM answers (keep_winrm = true)", "admin password posted encrypted",
		"hostname set from metadata", "user created", "SSH public key installed", "user data ran", "updates installed", "no build password left"} {
		if got := rc.result(name); got != "pass" {
			t.Errorf("%s: %s", name, got)
		}
	}
	if !strings.Contains(string(bc), "metadata service HttpService") {
		t.Errorf("the cloudbase-init evidence does not name the metadata service: %s", bc)
	}
	for _, d := range []string{plain, cloudbase} {
		var m struct{ Disk, SHA256 string }
		readJSON(t, filepath.Join(d, "standin.json"), &m)
		if got := fileSHA256(t, filepath.Join(d, m.Disk)); got != m.SHA256 {
			t.Errorf("%s: disk checksum %s, manifest says %s: verification changed the image", d, got, m.SHA256)
		}
		if table, err := os.ReadFile(filepath.Join(d, "standin.verify.txt")); err != nil {
			t.Error(err)
		} else {
			t.Logf("%s:\n%s", filepath.Base(d), table)
		}
		rb, _ := os.ReadFile(filepath.Join(d, "standin.verify.json"))
		if strings.Contains(string(rb), password) {
			t.Errorf("the build password is in %s's report", d)
		}
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	if len(after) > len(before) {
		t.Errorf("instance directories left behind: %v", after)
	}
}
