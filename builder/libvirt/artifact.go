package libvirt

import (
	"fmt"
	"log"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// BuilderID identifies winbake-libvirt artifacts.
const BuilderID = "winbake.libvirt"

// Artifact is the installed disk and its manifest in the output
// directory (or, with keep_in_pool, the disk volume in the pool). Its
// manifest is winbake-qemu's.
type Artifact struct {
	dir      string
	files    []string
	manifest image.Manifest
	// volume is "<pool>/<volume>" with keep_in_pool.
	volume string
	state  map[string]interface{}
	// keep is keep_golden_image.
	keep bool
}

func (a *Artifact) BuilderId() string { return BuilderID }
func (a *Artifact) Files() []string   { return a.files }

func (a *Artifact) Id() string {
	if a.volume != "" {
		return a.volume
	}
	return a.manifest.Disk
}

func (a *Artifact) String() string {
	where := "qcow2 disk " + a.manifest.Disk
	if a.volume != "" {
		where = "qcow2 volume " + a.volume
	}
	return fmt.Sprintf("Windows %s (%s) on %s, %s", a.manifest.Windows.Version, a.manifest.Windows.ImageName, a.manifest.Firmware, where)
}

func (a *Artifact) State(name string) interface{} { return a.state[name] }

// Destroy removes the files the build wrote, and the output directory
// once empty; with keep_golden_image (the default) it keeps them: Packer
// also destroys a builder's artifact when a post-processor fails. A
// volume kept in the pool is left to its owner.
func (a *Artifact) Destroy() error {
	if a.keep {
		log.Printf("winbake-libvirt: keeping the golden image %s in %s (keep_golden_image = true)", a.Id(), a.dir)
		return nil
	}
	return wbcommon.RemoveArtifactFiles(a.dir, a.files)
}
