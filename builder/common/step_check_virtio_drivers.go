package common

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// VirtioSetupDrivers are the virtio-win drivers Windows Setup loads from
// the answer file's PnpCustomizationsWinPE paths: storage (viostor for
// virtio-blk, vioscsi for virtio-scsi) and network.
var VirtioSetupDrivers = []string{"viostor", "vioscsi", "NetKVM"}

// VirtioDownloadStep returns the step that fetches (or, for a local path,
// checksums) the virtio-win ISO into StateVirtioWinISO, or nil when no
// virtio-win ISO is configured.
func (c *MediaConfig) VirtioDownloadStep() multistep.Step {
	if c.VirtioWinISOURL == "" {
		return nil
	}
	return &commonsteps.StepDownload{
		Checksum:    c.VirtioWinISOChecksum,
		Description: "virtio-win ISO",
		ResultKey:   qemuvm.StateVirtioWinISO,
		Url:         []string{c.VirtioWinISOURL},
		Extension:   "iso",
	}
}

// StepCheckVirtioDrivers checks, before the VM boots, that the virtio-win
// ISO holds the Setup drivers for the image being installed
// (<driver>/<folder>/<arch>, e.g. viostor/2k22/amd64). Without them Setup
// finds no disk and stops with a DiskConfiguration error half an hour into
// the build.
//
// Uses state: "ui", StateInstallImage, StateVirtioWinISO.
type StepCheckVirtioDrivers struct{}

func (s *StepCheckVirtioDrivers) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	image, ok := state.Get(StateInstallImage).(installmedia.Image)
	if !ok {
		return steps.Halt(state, ui, fmt.Errorf("the install image was not checked before the virtio drivers"))
	}
	iso, _ := state.Get(qemuvm.StateVirtioWinISO).(string)
	if iso == "" {
		return steps.Halt(state, ui, fmt.Errorf("virtio_win_iso_url: the virtio-win ISO was not downloaded"))
	}
	folder, err := image.VirtioDriverFolder()
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("virtio_win_iso_url: no virtio-win driver folder for image %q: %w", image.Name, err))
	}
	arch := image.VirtioArchFolder()

	var missing []string
	for _, driver := range VirtioSetupDrivers {
		dir := path.Join(driver, folder, arch)
		names, err := installmedia.ListDir(iso, dir)
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("virtio_win_iso_url: reading %s: %w", iso, err))
		}
		if !hasDriverPackage(names) {
			missing = append(missing, dir)
		}
	}
	if len(missing) > 0 {
		have, _ := installmedia.ListDir(iso, VirtioSetupDrivers[0])
		return steps.Halt(state, ui, fmt.Errorf("virtio_win_iso_url: %s has no driver (.inf) in %s, which Setup needs for %q; its %s folder holds %s: use a virtio-win release that supports this Windows version",
			iso, strings.Join(missing, ", "), image.Name, VirtioSetupDrivers[0], describeNames(have)))
	}
	ui.Say(fmt.Sprintf("virtio-win ISO has the Setup drivers for %s/%s", folder, arch))
	return multistep.ActionContinue
}

// Cleanup has nothing to undo: Run only reads the ISO.
func (s *StepCheckVirtioDrivers) Cleanup(multistep.StateBag) {}

func hasDriverPackage(names []string) bool {
	for _, n := range names {
		if strings.HasSuffix(strings.ToLower(n), ".inf") {
			return true
		}
	}
	return false
}

func describeNames(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, " ")
}
