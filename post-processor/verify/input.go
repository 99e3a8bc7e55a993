package verify

import (
	"errors"
	"fmt"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// inputImage is the generalized image the input artifact describes.
type inputImage = image.Image

// readInput finds the manifest of the input (winbake-sysprep's artifact,
// or winbake-compress's after it, which hands the manifest on) and checks
// that it describes a generalized image whose files are there. After
// winbake-compress, the disk booted is its qcow2 output: the file that is
// published is the file that is verified.
func readInput(a packersdk.Artifact) (*inputImage, error) {
	if a == nil {
		return nil, errors.New("no input artifact: winbake-verify follows winbake-sysprep (or winbake-compress after it)")
	}
	var path, published string
	if a.BuilderId() == image.CompressBuilderID {
		outputs, err := image.CompressedOutputs(a)
		if err != nil {
			return nil, err
		}
		for _, o := range outputs {
			if o.Format == "qcow2" {
				published = o.Path
				break
			}
		}
		if published == "" {
			return nil, fmt.Errorf("winbake-verify boots a qcow2 image, and the winbake-compress artifact holds %s: add qcow2 to its formats, or put winbake-verify right after winbake-sysprep", image.Formats(outputs))
		}
		if path, _ = a.State(image.StateManifest).(string); path == "" {
			return nil, fmt.Errorf("the winbake-compress artifact %s carries no winbake manifest of the firmware, TPM and machine the image boots with: its input was not a winbake image (winbake-sysprep's artifact)", a.Id())
		}
	} else if path = image.ManifestOf(a); path == "" {
		return nil, fmt.Errorf("the input artifact (%s, builder %s) has no winbake manifest (<vm_name>.json): winbake-verify takes the artifact of winbake-sysprep", a.Id(), a.BuilderId())
	}
	in, err := image.Open(path)
	if err != nil {
		return nil, err
	}
	if !in.Manifest.Generalized {
		return nil, fmt.Errorf("the input image %s is not generalized: winbake-verify boots an image as a cloud instance, which needs winbake-sysprep first", in.ManifestPath)
	}
	if published != "" {
		in.DiskPath = published
	}
	return in, nil
}
