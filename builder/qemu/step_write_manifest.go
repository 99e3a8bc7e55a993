package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

const stateArtifact = "artifact"

// stepWriteManifest checksums the disk, writes the manifest and puts the
// Artifact in state.
//
// Uses state: "ui", StateDiskPath, StateInstallImage, StateAccelerator,
// StateHyperV, StateOVMF, StateQemuGuestAgent, StateUpdates.
// Produces state: stateArtifact.
type stepWriteManifest struct {
	config *Config

	written string
}

func (s *stepWriteManifest) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	c := s.config
	disk := state.Get(qemuvm.StateDiskPath).(string)
	media, _ := state.Get(wbcommon.StateInstallImage).(installmedia.Image)
	accel, _ := state.Get(qemuvm.StateAccelerator).(string)

	ui.Say("Checksumming the disk " + disk)
	sum, _, err := diskcheck.FileSHA256(ctx, disk)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("checksumming the disk: %w", err))
	}
	m := image.Manifest{
		Disk: filepath.Base(disk), Format: "qcow2", SHA256: sum, Firmware: c.Firmware, SecureBoot: c.SecureBoot, TPM: c.TPMEnabled(),
		Machine: c.MachineType, DiskInterface: c.DiskInterface, NetDevice: c.NetDevice, Accelerator: accel,
	}
	files := []string{disk}
	m.ISOChecksum = wbcommon.ManifestISOChecksum(c.ISOChecksum, &c.SourceImageConfig)
	m.AdminUser = c.Comm.WinRMUser
	m.HyperVEnlightenments, _ = state.Get(qemuvm.StateHyperV).([]string)
	m.QemuGuestAgent, m.Updates = wbcommon.ManifestGuestFacts(state)
	if rec, ok := state.Get(wbcommon.StateBuildWinRM).(winrmsec.BuildWinRM); ok {
		m.WinRM = &rec
	}
	if c.Firmware == qemuvm.FirmwareUEFI {
		if ovmf, ok := state.Get(qemuvm.StateOVMF).(qemuvm.OVMF); ok {
			m.EFIFirmwareCode, _ = filepath.Abs(ovmf.Code)
		}
		m.EFIVars = qemuvm.EFIVarsName
		files = append(files, filepath.Join(c.OutputDir, qemuvm.EFIVarsName))
		m.SecureBootCertificates = qemuvm.ManifestSecureBootCertificates(ui, filepath.Join(c.OutputDir, qemuvm.EFIVarsName))
	}
	if c.TPMEnabled() {
		m.TPMState = qemuvm.TPMStateDirName
		_ = filepath.WalkDir(filepath.Join(c.OutputDir, qemuvm.TPMStateDirName), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	if serial := filepath.Join(c.OutputDir, qemuvm.SerialLogName); steps.FileExists(serial) {
		files = append(files, serial)
	}
	if src := c.SourceImageConfig.Manifest(); c.SourceImageConfig.Enabled() {
		m.SourceImage = c.SourceImage
		if src != nil {
			m.Windows = src.Windows
		}
	} else {
		m.Windows.ImageName, m.Windows.EditionID, m.Windows.InstallationType = media.Name, media.EditionID, media.InstallationType
		m.Windows.Version, m.Windows.Arch = media.Version.String(), media.Arch
	}

	b, _ := json.MarshalIndent(m, "", "  ")
	path := filepath.Join(c.OutputDir, c.VMName+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("writing the manifest: %w", err))
	}
	s.written = path
	files = append(files, path)
	ui.Say(fmt.Sprintf("Manifest %s: %s", path, strings.TrimSpace(string(b))))
	state.Put(stateArtifact, &Artifact{dir: c.OutputDir, files: files, manifest: m, keep: c.KeepGoldenImage == nil || *c.KeepGoldenImage, state: map[string]interface{}{
		"manifest": path, "generated_data": state.Get("generated_data"),
	}})
	return multistep.ActionContinue
}

// Cleanup removes the manifest if the build failed after writing it.
func (s *stepWriteManifest) Cleanup(state multistep.StateBag) {
	if s.written != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.written)
	}
}

// imageFormat guesses a firmware file's format from its name.
func imageFormat(path string) string {
	if strings.HasSuffix(path, ".qcow2") {
		return "qcow2"
	}
	return "raw"
}
