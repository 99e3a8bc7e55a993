package common

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
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

func (s *StepSourceDisk) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(StateDriver).(Driver)
	want, check, err := ParseSHA256Checksum(s.Checksum)
	if err != nil {
		return halt(state, ui, fmt.Errorf("source_image_checksum: %w", err))
	}
	if check {
		ui.Say("Checking the SHA-256 of " + s.Source)
		got, err := SHA256File(s.Source)
		if err != nil {
			return halt(state, ui, fmt.Errorf("source_image: %w", err))
		}
		if got != want {
			return halt(state, ui, fmt.Errorf("source_image_checksum: %s has SHA-256 %s, not %s; is it the image you meant?", s.Source, got, want))
		}
	}
	path := filepath.Join(s.OutputDir, s.Name)
	if s.Copy {
		ui.Say(fmt.Sprintf("Copying %s to %s", s.Source, path))
		err = driver.ConvertDisk(s.Source, path)
	} else {
		od, ok := driver.(OverlayDriver)
		if !ok {
			return halt(state, ui, fmt.Errorf("source_image: the driver cannot create overlays; set source_image_copy = true"))
		}
		ui.Say(fmt.Sprintf("Creating %s on top of %s (which is not written)", path, s.Source))
		err = od.CreateOverlay(path, s.Source)
		if err == nil {
			state.Put(StateDiskBacking, s.Source)
		}
	}
	if err != nil {
		_ = os.Remove(path)
		return halt(state, ui, fmt.Errorf("source_image: %w", err))
	}
	s.created = path
	state.Put(StateDiskPath, path)
	return multistep.ActionContinue
}

// Cleanup removes the disk when the build failed; the source is never
// touched.
func (s *StepSourceDisk) Cleanup(state multistep.StateBag) {
	if s.created != "" && buildFailed(state) {
		_ = os.Remove(s.created)
	}
}

// SHA256File returns the hex SHA-256 of a file.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
