package common

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// StepCopyEFIVars copies the OVMF variable store template into the output
// directory for a UEFI VM; it does nothing for BIOS.
//
// Uses state: "ui".
// Produces state: StateOVMF (with Vars pointing at the copy).
type StepCopyEFIVars struct {
	Firmware  string
	OVMF      qemuvm.OVMF
	OutputDir string

	created string
}

func (s *StepCopyEFIVars) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if s.Firmware != qemuvm.FirmwareUEFI {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	dst := filepath.Join(s.OutputDir, qemuvm.EFIVarsName)
	ui.Say(fmt.Sprintf("UEFI firmware %s, variables from %s", s.OVMF.Code, s.OVMF.Vars))
	if err := qemuvm.CopyFile(s.OVMF.Vars, dst, 0o644); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("efi_firmware_vars: copying the variable store: %w", err))
	}
	s.created = dst
	ovmf := s.OVMF
	ovmf.Vars = dst
	state.Put(qemuvm.StateOVMF, ovmf)
	return multistep.ActionContinue
}

// Cleanup removes the copy when the build failed.
func (s *StepCopyEFIVars) Cleanup(state multistep.StateBag) {
	if s.created != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.created)
	}
}
