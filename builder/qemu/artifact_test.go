package qemu

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// Packer destroys a builder's artifact when the first post-processor of a
// chain fails, whatever keep_input_artifact says: the golden image stays
// unless keep_golden_image = false.
func TestArtifactDestroyKeepsTheGoldenImage(t *testing.T) {
	for _, keep := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "output")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		disk := filepath.Join(dir, "golden.qcow2")
		if err := os.WriteFile(disk, []byte("disk"), 0o644); err != nil {
			t.Fatal(err)
		}
		a := &Artifact{dir: dir, files: []string{disk}, keep: keep, manifest: image.Manifest{Disk: "golden.qcow2"}}
		if err := a.Destroy(); err != nil {
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

func TestKeepGoldenImageDefaultsToTrue(t *testing.T) {
	for _, tc := range []struct {
		set  interface{}
		want bool
	}{{nil, true}, {false, false}, {true, true}} {
		raw := testConfig()
		if tc.set != nil {
			raw["keep_golden_image"] = tc.set
		}
		var c Config
		if _, err := c.Prepare(raw); err != nil {
			t.Fatal(err)
		}
		if *c.KeepGoldenImage != tc.want {
			t.Errorf("keep_golden_image %v: got %v", tc.set, *c.KeepGoldenImage)
		}
	}
}
