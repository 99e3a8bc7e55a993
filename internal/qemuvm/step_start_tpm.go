package qemuvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// TPMStateDirName is the directory of the swtpm state in the output
// directory; it is kept with the artifact (BitLocker, Windows Hello keys).
const TPMStateDirName = "tpm"

// StepStartTPM starts swtpm (TPM 2.0) for a VM with a TPM; it does nothing
// otherwise.
//
// Uses state: "ui", StateDriver.
// Produces state: StateTPMSocket.
type StepStartTPM struct {
	Enabled   bool
	OutputDir string

	started bool
}

func (s *StepStartTPM) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if !s.Enabled {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(StateDriver).(Driver)
	dir := filepath.Join(s.OutputDir, TPMStateDirName)
	ui.Say("Starting swtpm (TPM 2.0), state in " + dir)
	sock, err := driver.StartTPM(dir)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("tpm: %w", err))
	}
	s.started = true
	state.Put(StateTPMSocket, sock)
	return multistep.ActionContinue
}

// Cleanup stops swtpm and removes its socket; the state stays with the
// artifact unless the build failed.
func (s *StepStartTPM) Cleanup(state multistep.StateBag) {
	if !s.started {
		return
	}
	driver := state.Get(StateDriver).(Driver)
	_ = driver.StopTPM()
	dir := filepath.Join(s.OutputDir, TPMStateDirName)
	_ = os.Remove(filepath.Join(dir, "swtpm.sock"))
	if steps.BuildFailed(state) {
		_ = os.RemoveAll(dir)
	}
}
