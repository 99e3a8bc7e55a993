package compress

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Artifact is the image file written by the winbake-compress post-processor.
type Artifact struct {
	// Path is the absolute path of the image file.
	Path string
	// Format is the configured format, e.g. "qcow2" or "dd.gz".
	Format string
	// SHA256 is the hex SHA-256 of the file.
	SHA256 string
	// Size is the file size in bytes.
	Size int64
}

var _ packersdk.Artifact = (*Artifact)(nil)

func (a *Artifact) BuilderId() string { return BuilderId }

func (a *Artifact) Files() []string { return []string{a.Path} }

// Id is the path of the image file.
func (a *Artifact) Id() string { return a.Path }

func (a *Artifact) String() string {
	return fmt.Sprintf("%s image: %s (sha256 %s)", a.Format, a.Path, a.SHA256)
}

// State answers:
//
//   - "format": the configured format, e.g. "dd.gz";
//   - "sha256": the hex SHA-256 of the file;
//   - "size": the file size in bytes (int64);
//   - "maas_filetype": the MAAS boot-resource filetype (ddgz, ddtgz, ddxz),
//     empty for the other formats;
//   - "disk_format": the OpenStack Glance disk_format (qcow2, raw, vhdx,
//     vmdk), empty for the dd.* formats.
//
// Other names give nil.
func (a *Artifact) State(name string) interface{} {
	spec, _ := lookupFormat(a.Format)
	switch name {
	case "format":
		return a.Format
	case "sha256":
		return a.SHA256
	case "size":
		return a.Size
	case "maas_filetype":
		return spec.MaasFiletype
	case "disk_format":
		return spec.DiskFormat
	}
	return nil
}

// Destroy removes the image file.
func (a *Artifact) Destroy() error {
	if err := os.Remove(a.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
