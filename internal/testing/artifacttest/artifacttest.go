// Package artifacttest holds the checks every winbake builder's artifact
// must pass. Tests only: the plugin binary does not carry it.
package artifacttest

import (
	"os"
	"path/filepath"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// DestroyKeepsTheGoldenImage checks the builders' rule for Destroy:
// Packer destroys a builder's artifact when the first post-processor of a
// chain fails, whatever keep_input_artifact says, so the golden image
// stays unless keep_golden_image = false, and then its disk and directory
// go. newArtifact makes the builder's artifact for the disk golden.qcow2
// in dir.
func DestroyKeepsTheGoldenImage(t *testing.T, newArtifact func(dir, disk string, keep bool) packersdk.Artifact) {
	t.Helper()
	for _, keep := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "output")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		disk := filepath.Join(dir, "golden.qcow2")
		if err := os.WriteFile(disk, []byte("disk"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := newArtifact(dir, disk, keep).Destroy(); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(disk)
		if keep && err != nil {
			t.Errorf("keep_golden_image = true: the disk went: %v", err)
		}
		if _, errDir := os.Stat(dir); !keep && (!os.IsNotExist(err) || !os.IsNotExist(errDir)) {
			t.Errorf("keep_golden_image = false: disk %v, directory %v; want both gone", err, errDir)
		}
	}
}
