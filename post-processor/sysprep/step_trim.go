package sysprep

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepTrim runs Optimize-Volume -ReTrim on C:, so the clusters Windows no
// longer uses are discarded from the qcow2 disk. Windows retrims a virtio
// disk only when it reports an unmap granularity of 8 KiB or more
// (wbcommon.DiscardGranularity); a refusal ("Incorrect function.
// (0x80070001)") stops the build with that reason.
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
		if strings.Contains(err.Error(), "0x80070001") {
			return steps.Halt(state, ui, fmt.Errorf("trimming C: Windows did not retrim the disk, which it refuses when the disk's unmap granularity is too small "+
				"(winbake's VM gives the system disk discard_granularity=%d on virtio-blk and virtio-scsi); set skip_trim = true to go without: %w",
				qemuvm.DiscardGranularity, err))
		}
		return steps.Halt(state, ui, fmt.Errorf("trimming C: (set skip_trim = true to go without): %w", err))
	}
	for _, l := range lines(r.Stdout) {
		ui.Message(l)
	}
	return multistep.ActionContinue
}

func (s *stepTrim) Cleanup(multistep.StateBag) {}
