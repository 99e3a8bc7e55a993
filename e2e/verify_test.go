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

// golden -> sysprep without cloudbase-init -> verify, with real Packer under
// TCG (UEFI with a TPM): nothing reads the config drive, so the
// cloudbase-init check fails, the post-processor fails the build, the report
// says why, and the generalized image is unchanged.
func TestVerifyFailsWithoutCloudbaseInit(t *testing.T) {
	iso := standinISO(t)
	dir := t.TempDir()
	golden, generalized := filepath.Join(dir, "golden"), filepath.Join(dir, "generalized")
	const password = "Verify-e2e-Pw1"
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+golden, "-var", "sysprep_dir="+generalized,
		"-var", "winrm_password="+password, filepath.Join("..", "example", "verify-standin.pkr.hcl"))
	noQEMULeft(t, generalized)
	if err == nil {
		t.Fatalf("packer build passed although the image has no cloudbase-init:\n%s", log)
	}
	if strings.Contains(log, password) {
		t.Error("the build password appears in the build log")
	}
	for _, want := range []string{"Config drive (config-2)", "throwaway overlay", "winbake-verify report for", "cloudbase-init ran its plugins", "check(s) failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	var r verifyReport
	b := readJSON(t, filepath.Join(generalized, "standin.verify.json"), &r)
	if r.Passed || r.result("cloudbase-init ran its plugins") != "fail" || r.result("first boot completes") != "pass" {
		t.Errorf("report %s", b)
	}
	if strings.Contains(string(b), password) {
		t.Error("the build password is in the report")
	}
	if _, err := os.Stat(filepath.Join(generalized, "standin.verify.txt")); err != nil {
		t.Error(err)
	}
	var m struct{ Disk, SHA256 string }
	readJSON(t, filepath.Join(generalized, "standin.json"), &m)
	if got := fileSHA256(t, filepath.Join(generalized, m.Disk)); got != m.SHA256 {
		t.Errorf("generalized disk checksum %s, manifest says %s: verification changed the image", got, m.SHA256)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	if len(after) > len(before) {
		t.Errorf("instance directories left behind: %v", after)
	}
}
