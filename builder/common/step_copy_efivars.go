package common

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// EFIVarsName is the VM's UEFI variable store in the output directory; it
// is kept with the artifact (boot entries, Secure Boot keys).
const EFIVarsName = "efivars.fd"

// StepCopyEFIVars copies the OVMF variable store template into the output
// directory for a UEFI VM; it does nothing for BIOS.
//
// Uses state: "ui".
// Produces state: StateOVMF (with Vars pointing at the copy).
type StepCopyEFIVars struct {
	Firmware  string
	OVMF      OVMF
	OutputDir string

	created string
}

func (s *StepCopyEFIVars) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if s.Firmware != FirmwareUEFI {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	dst := filepath.Join(s.OutputDir, EFIVarsName)
	ui.Say(fmt.Sprintf("UEFI firmware %s, variables from %s", s.OVMF.Code, s.OVMF.Vars))
	if err := CopyFile(s.OVMF.Vars, dst, 0o644); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("efi_firmware_vars: copying the variable store: %w", err))
	}
	s.created = dst
	ovmf := s.OVMF
	ovmf.Vars = dst
	state.Put(StateOVMF, ovmf)
	return multistep.ActionContinue
}

// Cleanup removes the copy when the build failed.
func (s *StepCopyEFIVars) Cleanup(state multistep.StateBag) {
	if s.created != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.created)
	}
}
