package common

import (
	"context"
	"fmt"
	"maps"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// StepCreateUnattendMedia renders autounattend.xml for the image found by
// StepCheckInstallImage and writes it, with the WinRM certificate's
// PKCS#12 file when WinRM speaks HTTPS and the user's cd_/floppy_ files,
// onto the answer-file medium through the SDK's CD or floppy step. The
// SDK stages the files in a private temporary directory and removes the
// medium in Cleanup: the certificate's key is on no other disk.
//
// Uses state: "ui", StateInstallImage, and StepPrepareWinRM's certificate.
// Produces state: "cd_path" (unattend_media = "cd") or "floppy_path"
// (unattend_media = "floppy"), set by the SDK step.
type StepCreateUnattendMedia struct {
	Unattend *UnattendConfig
	Media    *MediaConfig
	// Firmware is "bios" or "uefi".
	Firmware string

	media multistep.Step
}

func (s *StepCreateUnattendMedia) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	image, ok := state.Get(StateInstallImage).(installmedia.Image)
	if !ok {
		return steps.Halt(state, ui, fmt.Errorf("the install image was not checked before creating the answer file"))
	}

	winrm, pfx, err := winrmMedium(state, image.Version.Build, s.Unattend.winrmNTLM)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	answerFile, err := s.render(image, winrm)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	files := map[string][]byte{UnattendFileName: answerFile}
	if pfx != nil {
		files[winrm.PFXFile] = pfx
	}

	if s.Media.UnattendMedia == UnattendMediaFloppy {
		ui.Say(fmt.Sprintf("Writing %s to a floppy for Windows Setup", UnattendFileName))
		s.media = &commonsteps.StepCreateFloppy{
			Files:       s.Media.FloppyFiles,
			Directories: s.Media.FloppyDirectories,
			Content:     withAnswerFile(s.Media.FloppyContent, files),
			Label:       s.Media.FloppyLabel,
		}
	} else {
		ui.Say(fmt.Sprintf("Writing %s to a CD labelled %s for Windows Setup", UnattendFileName, s.Media.CDLabel))
		s.media = &commonsteps.StepCreateCD{
			Files:   s.Media.CDFiles,
			Content: withAnswerFile(s.Media.CDContent, files),
			Label:   s.Media.CDLabel,
		}
	}
	return s.media.Run(ctx, state)
}

// render produces the answer file for image, naming it as the WIM spells
// it, with the virtio driver paths when a virtio-win ISO is attached.
func (s *StepCreateUnattendMedia) render(image installmedia.Image, winrm unattend.WinRMSettings) ([]byte, error) {
	var virtioFolder, archFolder string
	if s.Media.VirtioWinISOURL != "" {
		folder, err := image.VirtioDriverFolder()
		if err != nil {
			return nil, fmt.Errorf("virtio_win_iso_url: no virtio-win driver folder for image %q: %w", image.Name, err)
		}
		virtioFolder, archFolder = folder, image.VirtioArchFolder()
	}
	config := *s.Unattend
	config.ImageName = image.Name
	config.winrm = winrm
	return config.Render(s.Firmware, virtioFolder, archFolder, image.Arch)
}

// withAnswerFile adds winbake's files (the answer file, and the WinRM
// certificate's PKCS#12 file over HTTPS) to the user's content.
func withAnswerFile(content map[string]string, files map[string][]byte) map[string]string {
	merged := maps.Clone(content)
	if merged == nil {
		merged = map[string]string{}
	}
	for name, b := range files {
		merged[name] = string(b)
	}
	return merged
}

// Cleanup removes the medium the SDK step created.
func (s *StepCreateUnattendMedia) Cleanup(state multistep.StateBag) {
	if s.media != nil {
		s.media.Cleanup(state)
	}
}
