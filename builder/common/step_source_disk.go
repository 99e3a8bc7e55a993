package common

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// StepSourceDisk checks source_image against its checksum and makes the
// VM's disk in the output directory from it: a qcow2 overlay backed by the
// source (StepFlattenDisk makes it standalone at the end), or a full copy.
// It takes the place of StepCreateDisk.
//
// Uses state: "ui", StateDriver.
// Produces state: StateDiskPath, StateDiskBacking (overlay only).
type StepSourceDisk struct {
	Source    string // absolute path of the qcow2 source
	Checksum  string // source_image_checksum
	Copy      bool
	OutputDir string
	Name      string // file name, e.g. "<vm_name>.qcow2"

	created string
}

func (s *StepSourceDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	want, check, err := ParseSHA256Checksum(s.Checksum)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("source_image_checksum: %w", err))
	}
	if check {
		ui.Say("Checking the SHA-256 of " + s.Source)
		got, _, err := diskcheck.FileSHA256(ctx, s.Source)
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("source_image: %w", err))
		}
		if got != want {
			return steps.Halt(state, ui, fmt.Errorf("source_image_checksum: %s has SHA-256 %s, not %s; is it the image you meant?", s.Source, got, want))
		}
	}
	path := filepath.Join(s.OutputDir, s.Name)
	if s.Copy {
		ui.Say(fmt.Sprintf("Copying %s to %s", s.Source, path))
		err = driver.ConvertDisk(s.Source, path)
	} else {
		od, ok := driver.(qemuvm.OverlayDriver)
		if !ok {
			return steps.Halt(state, ui, fmt.Errorf("source_image: the driver cannot create overlays; set source_image_copy = true"))
		}
		ui.Say(fmt.Sprintf("Creating %s on top of %s (which is not written)", path, s.Source))
		err = od.CreateOverlay(path, s.Source)
		if err == nil {
			state.Put(StateDiskBacking, s.Source)
		}
	}
	if err != nil {
		_ = os.Remove(path)
		return steps.Halt(state, ui, fmt.Errorf("source_image: %w", err))
	}
	s.created = path
	state.Put(qemuvm.StateDiskPath, path)
	return multistep.ActionContinue
}

// Cleanup removes the disk when the build failed; the source is never
// touched.
func (s *StepSourceDisk) Cleanup(state multistep.StateBag) {
	if s.created != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.created)
	}
}
