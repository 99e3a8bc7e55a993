package sysprep

import (
	"errors"
	"fmt"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// inputImage is the golden image the input artifact describes.
type inputImage = image.Image

// readInput finds the manifest of a winbake builder artifact and checks
// that the files it names are there and that the image is not generalized
// yet.
func readInput(a packersdk.Artifact) (*inputImage, error) {
	if a == nil {
		return nil, errors.New("no input artifact: winbake-sysprep follows a winbake-qemu or winbake-libvirt build")
	}
	path := image.ManifestOf(a)
	if path == "" {
		return nil, fmt.Errorf("the input artifact (%s, builder %s) has no winbake manifest (<vm_name>.json): winbake-sysprep takes the artifact of winbake-qemu or winbake-libvirt", a.Id(), a.BuilderId())
	}
	in, err := image.Open(path)
	if err != nil {
		return nil, err
	}
	if in.Manifest.Generalized {
		return nil, fmt.Errorf("the input image %s is generalized already: sysprep runs on the golden image a builder made, and only a limited number of times per installation", in.ManifestPath)
	}
	return in, nil
}
