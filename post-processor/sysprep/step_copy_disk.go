package sysprep

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepCopyDisk copies the golden disk into the output directory as a
// standalone qcow2 (qemu-img convert, which opens the golden disk read-only
// and leaves out unused clusters). Sysprep runs on the copy.
//
// Uses state: "ui", StateDriver, stateInput.
// Produces state: StateDiskPath.
type stepCopyDisk struct {
	Path string

	created bool
}

func (s *stepCopyDisk) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	in := state.Get(stateInput).(*inputImage)
	ui.Say(fmt.Sprintf("Copying the golden disk %s to %s (the golden disk is not changed)", in.DiskPath, s.Path))
	if err := driver.ConvertDisk(in.DiskPath, s.Path); err != nil {
		_ = os.Remove(s.Path)
		return steps.Halt(state, ui, fmt.Errorf("copying the golden disk: %w", err))
	}
	s.created = true
	state.Put(qemuvm.StateDiskPath, s.Path)
	return multistep.ActionContinue
}

// Cleanup removes the copy when the run failed.
func (s *stepCopyDisk) Cleanup(state multistep.StateBag) {
	if s.created && steps.BuildFailed(state) {
		_ = os.Remove(s.Path)
	}
}
