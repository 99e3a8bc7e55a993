package qemu

import (
	"fmt"
	"os"
)

// Artifact is the installed disk and the files kept with it in the output
// directory.
type Artifact struct {
	dir      string
	files    []string
	manifest Manifest
	state    map[string]interface{}
}

func (a *Artifact) BuilderId() string { return BuilderID }
func (a *Artifact) Files() []string   { return a.files }
func (a *Artifact) Id() string        { return a.manifest.Disk }

func (a *Artifact) String() string {
	return fmt.Sprintf("Windows %s (%s) on %s, qcow2 disk %s", a.manifest.Windows.Version, a.manifest.Windows.ImageName, a.manifest.Firmware, a.manifest.Disk)
}

func (a *Artifact) State(name string) interface{} { return a.state[name] }

// Destroy removes the output directory.
func (a *Artifact) Destroy() error { return os.RemoveAll(a.dir) }
