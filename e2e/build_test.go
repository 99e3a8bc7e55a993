//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeRawDisk writes a 4 MiB raw disk: random data, a zero hole, text.
func writeRawDisk(t *testing.T, path string) {
	t.Helper()
	disk := make([]byte, 4<<20)
	if _, err := rand.Read(disk[:1<<20]); err != nil {
		t.Fatal(err)
	}
	copy(disk[3<<20:], bytes.Repeat([]byte("winbake test disk\n"), 1000))
	if err := os.WriteFile(path, disk, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuildWithCompressPostProcessor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	input := filepath.Join(dir, "input.raw")
	writeRawDisk(t, input)
	out := filepath.Join(dir, "out")

	log, err := installed.run("", "build",
		"-var", "input_disk="+input, "-var", "output_dir="+out,
		filepath.Join("testdata", "compress-file.pkr.hcl"))
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}

	qcow2 := filepath.Join(out, "disk.qcow2")
	if cmp, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "qcow2", input, qcow2).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare input vs output: %v\n%s\npacker log:\n%s", err, cmp, log)
	}

	var manifest struct {
		Builds []struct {
			Files []struct{ Name string } `json:"files"`
		} `json:"builds"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Builds) != 1 || len(manifest.Builds[0].Files) != 1 ||
		!strings.HasSuffix(manifest.Builds[0].Files[0].Name, "disk.qcow2") {
		t.Fatalf("manifest does not list disk.qcow2 as the build's only file:\n%s", raw)
	}
}

// Without the plugin, the same template must not validate: proves the tests
// above depend on the installed plugin and not on something Packer bundles.
func TestTemplateNeedsThePlugin(t *testing.T) {
	t.Parallel()
	bare := &packerEnv{packer: installed.packer, pluginPath: t.TempDir(), configDir: t.TempDir()}
	log, err := bare.run("", "validate",
		"-var", "input_disk=/dev/null", "-var", "output_dir="+t.TempDir(),
		filepath.Join("testdata", "compress-file.pkr.hcl"))
	if err == nil {
		t.Fatalf("packer validate passed without the winbake plugin installed:\n%s", log)
	}
	if !strings.Contains(log, "winbake-compress") {
		t.Fatalf("packer's error does not name the missing winbake-compress post-processor:\n%s", log)
	}
}

// A configuration mistake surfaces through Packer as one error that names
// the field and what it accepts.
func TestValidateReportsBadField(t *testing.T) {
	t.Parallel()
	log, err := installed.run(t.TempDir(), "validate", mustAbs(t, filepath.Join("testdata", "compress-bad-format.pkr.hcl")))
	if err == nil {
		t.Fatalf("packer validate accepted format = \"zip\":\n%s", log)
	}
	// Packer wraps long lines; compare with white space folded.
	folded := strings.Join(strings.Fields(log), " ")
	if !strings.Contains(folded, `format: "zip" is not supported; use one of qcow2, raw, vhdx, vmdk, dd.gz, dd.tgz, dd.xz`) {
		t.Fatalf("packer's output does not carry winbake's error naming format and the accepted values:\n%s", log)
	}
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
