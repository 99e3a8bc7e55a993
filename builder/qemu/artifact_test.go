package qemu

import (
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/artifacttest"
)

// Packer destroys a builder's artifact when the first post-processor of a
// chain fails, whatever keep_input_artifact says: the golden image stays
// unless keep_golden_image = false.
func TestArtifactDestroyKeepsTheGoldenImage(t *testing.T) {
	artifacttest.DestroyKeepsTheGoldenImage(t, func(dir, disk string, keep bool) packersdk.Artifact {
		return &Artifact{dir: dir, files: []string{disk}, keep: keep, manifest: image.Manifest{Disk: "golden.qcow2"}}
	})
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
