package verify

import (
	"errors"
	"fmt"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/post-processor/compress"
	"github.com/winbake/packer-plugin-winbake/post-processor/sysprep"
)

// inputImage is the generalized image the input artifact describes.
type inputImage = sysprep.Image

// readInput finds the manifest of the input (winbake-sysprep's artifact or
// winbake-compress's, which keeps the manifest) and checks that it
// describes a generalized qcow2 image whose files are there.
func readInput(a packersdk.Artifact) (*inputImage, error) {
	if a == nil {
		return nil, errors.New("no input artifact: winbake-verify follows winbake-sysprep (or winbake-compress after it)")
	}
	path := sysprep.ManifestOf(a)
	if path == "" {
		if a.BuilderId() == compress.BuilderId {
			return nil, fmt.Errorf("the input is winbake-compress's file %s, which carries no manifest of the firmware, TPM and machine the image boots with: put winbake-verify right after winbake-sysprep and winbake-compress after it (winbake-verify passes its input on unchanged)", a.Id())
		}
		return nil, fmt.Errorf("the input artifact (%s, builder %s) has no winbake manifest (<vm_name>.json): winbake-verify takes the artifact of winbake-sysprep", a.Id(), a.BuilderId())
	}
	in, err := sysprep.OpenImage(path)
	if err != nil {
		return nil, err
	}
	if !in.Manifest.Generalized {
		return nil, fmt.Errorf("the input image %s is not generalized: winbake-verify boots an image as a cloud instance, which needs winbake-sysprep first", in.ManifestPath)
	}
	return in, nil
}
