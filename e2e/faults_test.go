//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountTmpfs mounts a tmpfs of size (e.g. "20m") at dir for the test: a
// file system that fills up for real.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "winbake-e2e", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs (the e2e tests run as root): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
}

// The golden image survives a failing post-processor through real Packer:
// winbake-compress runs out of space on a 20 MiB tmpfs, Packer then
// destroys the builder's artifact (a failed first post-processor does so
// whatever keep_input_artifact says), and winbake-qemu's artifact keeps
// the golden image (keep_golden_image defaults to true). The error says
// what happened, and the full directory holds nothing half-written.
func TestGoldenImageSurvivesFailedCompress(t *testing.T) {
	iso := standinISO(t)
	dir := t.TempDir()
	out, images := filepath.Join(dir, "golden"), filepath.Join(dir, "images")
	mountTmpfs(t, images, "20m")
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out, "-var", "images_dir="+images,
		filepath.Join("testdata", "golden-survives-failed-compress.pkr.hcl"))
	noQEMULeft(t, out)
	if err == nil {
		t.Fatalf("the build succeeded although the output directory is 20 MiB:\n%s", log)
	}
	if !strings.Contains(log, "no space left on device") || !strings.Contains(log, images) {
		t.Errorf("the error does not say the disk is full and where:\n%s", log)
	}
	var m struct{ Disk, SHA256 string }
	b, err := os.ReadFile(filepath.Join(out, "standin.json"))
	if err != nil {
		t.Fatalf("the golden image's manifest is gone: %v\n%s", err, log)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(out, m.Disk)
	if got := sha256Of(t, disk); got != m.SHA256 {
		t.Errorf("the golden disk changed: sha256 %s, manifest %s", got, m.SHA256)
	}
	if check, err := exec.Command("qemu-img", "check", disk).CombinedOutput(); err != nil {
		t.Errorf("qemu-img check %s: %v\n%s", disk, err, check)
	}
	if left, err := os.ReadDir(images); err != nil || len(left) != 0 {
		t.Errorf("the full directory holds %v (%v); want nothing", left, err)
	}
}
