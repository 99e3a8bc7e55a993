package common

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// StateInstallImage is the state key under which StepCheckInstallImage
// stores the installmedia.Image that Setup will install.
const StateInstallImage = "install_image"

// StepCheckInstallImage reads the image list of the install ISO on the host
// and stops the build, before any VM starts, when image_name is not on it.
// The matched image (its exact name, version and architecture) picks the
// virtio driver folder for the answer file.
//
// Uses state: "ui", "iso_path" (from the SDK's StepDownload).
// Produces state: StateInstallImage (installmedia.Image).
type StepCheckInstallImage struct {
	ImageName string
}

func (s *StepCheckInstallImage) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	isoPath, _ := state.Get("iso_path").(string)
	if isoPath == "" {
		return steps.Halt(state, ui, fmt.Errorf("no install ISO was downloaded (iso_path is empty)"))
	}

	ui.Say(fmt.Sprintf("Reading the Windows images on %s...", isoPath))
	media, err := installmedia.ReadISO(isoPath)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("reading the install ISO: %w", err))
	}
	image, err := media.FindImage(s.ImageName)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	ui.Say(fmt.Sprintf("Installing image %d %q: %s, build %s, %s (from %s on %s)",
		image.Index, image.Name, image.InstallationType, image.Version, image.Arch, media.ImagePath, media.Filesystem))
	state.Put(StateInstallImage, image)
	return multistep.ActionContinue
}

// Cleanup has nothing to undo: Run only reads the ISO.
func (s *StepCheckInstallImage) Cleanup(multistep.StateBag) {}
