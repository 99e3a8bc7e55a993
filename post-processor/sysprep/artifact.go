package sysprep

import (
	"fmt"
	"os"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// Artifact is the generalized image: a standalone qcow2 disk, its manifest,
// and the UEFI variables and TPM state it boots with.
type Artifact struct {
	Dir          string
	ManifestPath string
	Manifest     image.GeneralizedManifest
	files        []string
}

func (a *Artifact) BuilderId() string { return image.SysprepBuilderID }
func (a *Artifact) Files() []string   { return a.files }
func (a *Artifact) Id() string        { return a.Manifest.Disk }

func (a *Artifact) String() string {
	return fmt.Sprintf("generalized Windows %s (%s) on %s, qcow2 disk %s", a.Manifest.Windows.Version, a.Manifest.Windows.ImageName, a.Manifest.Firmware, a.Manifest.Disk)
}

// State answers "manifest" (the manifest's path, as winbake builders do),
// "generalized" (true) and "sha256" (of the disk); other names give nil.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "manifest":
		return a.ManifestPath
	case "generalized":
		return true
	case "sha256":
		return a.Manifest.SHA256
	}
	return nil
}

// Destroy removes the output directory.
func (a *Artifact) Destroy() error { return os.RemoveAll(a.Dir) }
