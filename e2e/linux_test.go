//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/vmslot"
)

// debianImage is the Debian cloud image with the real cloud-init that
// scripts/debian-cloud-image.sh builds from Debian's packages, cached under
// ~/.cache/winbake keyed by its inputs.
func debianImage(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WINBAKE_DEBIAN_IMAGE"); p != "" {
		return p
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "debian-cloud-image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script, filepath.Join(t.TempDir(), "unused.qcow2")).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("scripts/debian-cloud-image.sh: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// A real Debian with the real cloud-init through winbake-compress and
// winbake-verify, driven by Packer: verify boots the compressed qcow2 on a
// larger disk with a config drive, and every check reads what cloud-init
// itself recorded: its final message on the console, result.json without
// errors from the ConfigDrive datasource, the instance-id, the hostname, the
// SSH key for the default user (and the host key it printed), the user data,
// sudo, the grown root file system, and a user check.
func TestVerifyDebianCloudInit(t *testing.T) {
	img := debianImage(t)
	vmslot.Acquire(t)
	dir := t.TempDir()
	log, err := installed.run("", "build", "-var", "input_disk="+img, "-var", "output_dir="+dir,
		filepath.Join("testdata", "verify-debian.pkr.hcl"))
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "debian-12-compressed.verify.json"))
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, log)
	}
	var r verifyReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"first boot completes", "SSH logs on with the instance's key", "SSH host key on the console",
		"cloud-init finished without errors", "metadata from the config drive", "hostname set", "user data ran",
		"default user has sudo", "root file system grew", "openssh-server is running"} {
		if got := r.result(name); got != "pass" {
			t.Errorf("check %q: %s (%s)", name, got, r.evidence(name))
		}
	}
	if !r.Passed || !strings.Contains(r.evidence("metadata from the config drive"), "DataSourceConfigDrive") ||
		!strings.Contains(r.evidence("metadata from the config drive"), r.Instance) {
		t.Errorf("report %s", raw)
	}
	for _, want := range []string{"Debian GNU/Linux 12 (bookworm)", "Connecting over SSH as debian", "All checks passed."} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The published file is the one verified, and it is unchanged.
	if out, err := exec.Command("qemu-img", "check", filepath.Join(dir, "debian-12-compressed.qcow2")).CombinedOutput(); err != nil {
		t.Errorf("qemu-img check: %v\n%s", err, out)
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*")); len(left) > 0 {
		t.Logf("instance directories of other runs in %s: %v", os.TempDir(), left)
	}
}
