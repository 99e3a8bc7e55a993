package common

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// StepFlattenDisk turns the overlay StepSourceDisk made into a standalone
// qcow2 (qemu-img convert reads through the backing file), so the artifact
// does not depend on the source image. Without an overlay it does nothing.
//
// Uses state: "ui", StateDriver, StateDiskPath, StateDiskBacking.
type StepFlattenDisk struct {
	tmp string
}

func (s *StepFlattenDisk) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	backing, ok := state.Get(StateDiskBacking).(string)
	if !ok || backing == "" {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	disk := state.Get(qemuvm.StateDiskPath).(string)
	s.tmp = disk + ".flat"
	ui.Say(fmt.Sprintf("Flattening %s into a standalone qcow2 (no longer backed by %s)", disk, backing))
	if err := driver.ConvertDisk(disk, s.tmp); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("flattening the disk: %w", err))
	}
	if err := os.Rename(s.tmp, disk); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("flattening the disk: %w", err))
	}
	s.tmp = ""
	forget(state, StateDiskBacking)
	return multistep.ActionContinue
}

// Cleanup removes a half-written flattened copy.
func (s *StepFlattenDisk) Cleanup(multistep.StateBag) {
	if s.tmp != "" {
		_ = os.Remove(s.tmp)
	}
}
