package qemu

import (
	"fmt"
	"log"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// Artifact is the installed disk and the files kept with it in the output
// directory.
type Artifact struct {
	dir      string
	files    []string
	manifest image.Manifest
	state    map[string]interface{}
	// keep is keep_golden_image.
	keep bool
}

func (a *Artifact) BuilderId() string { return image.QemuBuilderID }
func (a *Artifact) Files() []string   { return a.files }
func (a *Artifact) Id() string        { return a.manifest.Disk }

func (a *Artifact) String() string {
	return fmt.Sprintf("Windows %s (%s) on %s, qcow2 disk %s", a.manifest.Windows.Version, a.manifest.Windows.ImageName, a.manifest.Firmware, a.manifest.Disk)
}

func (a *Artifact) State(name string) interface{} { return a.state[name] }

// Destroy removes the files the build wrote, and the output directory
// once empty; with keep_golden_image (the default) it keeps them: Packer
// also destroys a builder's artifact when a post-processor fails.
func (a *Artifact) Destroy() error {
	if a.keep {
		log.Printf("winbake-qemu: keeping the golden image %s in %s (keep_golden_image = true)", a.manifest.Disk, a.dir)
		return nil
	}
	return wbcommon.RemoveArtifactFiles(a.dir, a.files)
}
