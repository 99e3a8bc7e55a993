package sysprep

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// noAppxMarker is what appx-list.ps1 prints when Windows has no Appx
// module.
const noAppxMarker = "winbake: no Appx module"

// stepRemoveAppx removes, for all users, the per-user Appx packages that
// make sysprep fail ("installed for a user, but not provisioned for all
// users"), and says which it removed.
//
// Uses state: "ui", "communicator".
// Produces state: stateRemovedAppx.
type stepRemoveAppx struct {
	Names []string
}

func (s *stepRemoveAppx) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	removed := []string{}
	for _, name := range s.Names {
		r, err := runScript(ctx, comm, "appx-list.ps1", map[string]string{"Name": name, "NoAppxMarker": noAppxMarker})
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("remove_appx_packages: listing %s: %w", name, err))
		}
		found := lines(r.Stdout)
		if len(found) == 1 && found[0] == noAppxMarker {
			ui.Say("This Windows has no Appx module (Get-AppxPackage): no Appx package to remove")
			state.Put(stateRemovedAppx, removed)
			return multistep.ActionContinue
		}
		for _, full := range found {
			if _, err := runScript(ctx, comm, "appx-remove.ps1", map[string]string{"FullName": full}); err != nil {
				return steps.Halt(state, ui, fmt.Errorf("remove_appx_packages: removing %s: %w", full, err))
			}
			ui.Say("Removed the Appx package " + full + " (installed for a user, it would make sysprep fail)")
			removed = append(removed, full)
		}
	}
	if len(removed) == 0 && len(s.Names) > 0 {
		ui.Say("No per-user Appx package that blocks sysprep is installed")
	}
	state.Put(stateRemovedAppx, removed)
	return multistep.ActionContinue
}

func (s *stepRemoveAppx) Cleanup(multistep.StateBag) {}
