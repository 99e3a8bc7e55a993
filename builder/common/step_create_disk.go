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

// StepCreateDisk creates the empty qcow2 system disk in the output
// directory. QEMU attaches it with discard=unmap and detect-zeroes=unmap so
// space Windows frees is released.
//
// Uses state: "ui", StateDriver.
// Produces state: StateDiskPath.
type StepCreateDisk struct {
	OutputDir string
	Name      string // file name, e.g. "<vm_name>.qcow2"
	SizeMB    uint64

	created string
}

func (s *StepCreateDisk) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	path := filepath.Join(s.OutputDir, s.Name)
	ui.Say(fmt.Sprintf("Creating a %d MiB qcow2 disk %s", s.SizeMB, path))
	if err := driver.CreateDisk(path, s.SizeMB); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("creating the disk: %w", err))
	}
	s.created = path
	state.Put(qemuvm.StateDiskPath, path)
	return multistep.ActionContinue
}

// Cleanup removes the disk when the build failed; a finished disk is the
// artifact.
func (s *StepCreateDisk) Cleanup(state multistep.StateBag) {
	if s.created != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.created)
	}
}
