package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Compressed is winbake-compress's artifact: the files it wrote, in the
// configured order, and the winbake manifest of the image they hold.
type Compressed struct {
	Outputs []Output
	// Manifest is the path of the winbake manifest of the input image
	// (firmware, TPM state, machine, Windows), "" when the input had none.
	Manifest string
}

var _ packersdk.Artifact = (*Compressed)(nil)

func (a *Compressed) BuilderId() string { return CompressBuilderID }

func (a *Compressed) Files() []string {
	files := make([]string, len(a.Outputs))
	for i, o := range a.Outputs {
		files[i] = o.Path
	}
	return files
}

// Id is the path of the first output.
func (a *Compressed) Id() string {
	if len(a.Outputs) == 0 {
		return ""
	}
	return a.Outputs[0].Path
}

func (a *Compressed) String() string {
	lines := make([]string, len(a.Outputs))
	for i, o := range a.Outputs {
		lines[i] = fmt.Sprintf("%s image: %s (sha256 %s)", o.Format, o.Path, o.SHA256)
	}
	return strings.Join(lines, "\n")
}

// State answers StateOutputs (all outputs, JSON) and StateManifest, and,
// for the first output, "format", "sha256", "size" (int64),
// "maas_filetype" and "disk_format". Other names give nil.
func (a *Compressed) State(name string) interface{} {
	switch name {
	case StateOutputs:
		return EncodeOutputs(a.Outputs)
	case StateManifest:
		if a.Manifest == "" {
			return nil
		}
		return a.Manifest
	}
	if len(a.Outputs) == 0 {
		return nil
	}
	first := a.Outputs[0]
	switch name {
	case "format":
		return first.Format
	case "sha256":
		return first.SHA256
	case "size":
		return first.Size
	case "maas_filetype":
		return first.MaasFiletype
	case "disk_format":
		return first.DiskFormat
	}
	return nil
}

// Destroy removes the output files.
func (a *Compressed) Destroy() error {
	var errs []error
	for _, o := range a.Outputs {
		if err := os.Remove(o.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
