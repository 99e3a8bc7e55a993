package sysprep

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stepTrim runs Optimize-Volume -ReTrim on C:, so the clusters Windows no
// longer uses are discarded from the qcow2 disk.
//
// Uses state: "ui", "communicator".
type stepTrim struct {
	Skip bool
}

func (s *stepTrim) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if s.Skip {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	ui.Say("Trimming the free space of C: (Optimize-Volume -ReTrim)")
	r, err := runScript(ctx, communicatorOf(state), "trim.ps1", nil)
	if err != nil {
		return halt(state, ui, fmt.Errorf("trimming C: (set skip_trim = true to go without): %w", err))
	}
	for _, l := range lines(r.Stdout) {
		ui.Message(l)
	}
	return multistep.ActionContinue
}

func (s *stepTrim) Cleanup(multistep.StateBag) {}
