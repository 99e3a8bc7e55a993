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

// StepCopyTPMState copies the swtpm state of a source image into the
// output directory's tpm/, where StepStartTPM starts swtpm on it, so the
// new VM keeps the TPM the source was installed with. It does nothing
// when From is empty.
//
// Uses state: "ui".
type StepCopyTPMState struct {
	From      string
	OutputDir string

	created string
}

func (s *StepCopyTPMState) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if s.From == "" {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	dst := filepath.Join(s.OutputDir, qemuvm.TPMStateDirName)
	ui.Say(fmt.Sprintf("TPM state from %s", s.From))
	if err := os.Mkdir(dst, 0o700); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("source_image: TPM state: %w", err))
	}
	s.created = dst
	err := qemuvm.CopyTree(s.From, dst)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("source_image: copying the TPM state: %w", err))
	}
	return multistep.ActionContinue
}

// Cleanup removes the copy when the build failed.
func (s *StepCopyTPMState) Cleanup(state multistep.StateBag) {
	if s.created != "" && steps.BuildFailed(state) {
		_ = os.RemoveAll(s.created)
	}
}
