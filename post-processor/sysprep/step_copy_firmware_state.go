package sysprep

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepCopyFirmwareState copies the golden image's UEFI variable store and
// TPM state into the output directory: Windows boots with the boot entries
// and TPM it was installed with, and the golden copies stay as they were.
//
// Uses state: "ui", stateInput.
// Produces state: StateOVMF (UEFI; Vars is the copy).
type stepCopyFirmwareState struct {
	OutputDir string
	// Code is the OVMF code file (UEFI only).
	Code qemuvm.OVMF

	created []string
}

func (s *stepCopyFirmwareState) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	in := state.Get(stateInput).(*inputImage)
	if in.EFIVarsPath != "" {
		dst := filepath.Join(s.OutputDir, qemuvm.EFIVarsName)
		if err := s.copyFile(in.EFIVarsPath, dst); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("copying the UEFI variables: %w", err))
		}
		ovmf := s.Code
		ovmf.Vars, ovmf.VarsFormat = dst, qemuvm.FlashFormat(dst)
		ui.Say(fmt.Sprintf("UEFI firmware %s with a copy of the image's variables %s", ovmf.Code, in.EFIVarsPath))
		state.Put(qemuvm.StateOVMF, ovmf)
	}
	if in.TPMStateDir != "" {
		dstDir := filepath.Join(s.OutputDir, qemuvm.TPMStateDirName)
		err := filepath.WalkDir(in.TPMStateDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(in.TPMStateDir, p)
			dst := filepath.Join(dstDir, rel)
			switch {
			case d.IsDir():
				if err := os.MkdirAll(dst, 0o700); err != nil {
					return err
				}
				s.created = append(s.created, dst)
				return nil
			case d.Type().IsRegular():
				return s.copyFile(p, dst)
			}
			return nil // swtpm's socket
		})
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("copying the TPM state: %w", err))
		}
		ui.Say("TPM state copied from " + in.TPMStateDir)
	}
	return multistep.ActionContinue
}

func (s *stepCopyFirmwareState) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	s.created = append(s.created, dst)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Cleanup removes the copies when the run failed.
func (s *stepCopyFirmwareState) Cleanup(state multistep.StateBag) {
	if !steps.BuildFailed(state) {
		return
	}
	for i := len(s.created) - 1; i >= 0; i-- {
		_ = os.RemoveAll(s.created[i])
	}
}
