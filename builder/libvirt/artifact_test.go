package libvirt

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
