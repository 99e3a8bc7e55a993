package sysprep

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/fetch"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stateCloudbaseInitMSI is the local path of the cloudbase-init MSI.
const stateCloudbaseInitMSI = "cloudbase_init_msi_path"

// stepFetchCloudbaseInit makes the cloudbase-init MSI a local file before
// anything boots: an msi URL is downloaded into Packer's cache (once; a
// cached copy with the checksum is reused) and checked against
// msi_checksum. A local msi was checked when the template was validated.
// It does nothing without a cloudbase_init block.
//
// Uses state: "ui".
// Produces state: stateCloudbaseInitMSI.
type stepFetchCloudbaseInit struct {
	Config *CloudbaseInitConfig
}

func (s *stepFetchCloudbaseInit) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if s.Config == nil {
		return multistep.ActionContinue
	}
	path := s.Config.MSI
	if fetch.IsURL(path) {
		ui := state.Get("ui").(packersdk.Ui)
		ui.Say(fmt.Sprintf("Downloading the cloudbase-init MSI %s", path))
		var err error
		if path, err = fetch.Download(ctx, ui, "winbake-sysprep", s.Config.MSI, s.Config.MSIChecksum); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("cloudbase_init.msi: %w", err))
		}
	}
	state.Put(stateCloudbaseInitMSI, path)
	return multistep.ActionContinue
}

// Cleanup keeps the download: Packer's cache is where it is reused from.
func (s *stepFetchCloudbaseInit) Cleanup(multistep.StateBag) {}
