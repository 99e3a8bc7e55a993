package sysprep

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// stepWriteManifest checksums the generalized disk, writes
// <vm_name>.json with `generalized: true`, and puts the Artifact in state.
//
// Uses state: "ui", stateInput, StateDiskPath, StateAccelerator,
// StateHyperV, StateOVMF, stateRemovedAppx, stateCloudbaseInit.
// Produces state: stateArtifact.
type stepWriteManifest struct {
	OutputDir string
	VMName    string
	// CloudbaseInitUser is cloudbase-init's username, "" without
	// cloudbase_init.
	CloudbaseInitUser string
	// HTTPSAtFirstBoot: cloudbase-init's ConfigWinRMListenerPlugin will
	// create an HTTPS listener at an instance's first boot.
	HTTPSAtFirstBoot bool

	written string
}

func (s *stepWriteManifest) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	in := state.Get(stateInput).(*inputImage)
	disk := state.Get(qemuvm.StateDiskPath).(string)
	ui.Say("Checksumming the generalized disk " + disk)
	sum, _, err := diskcheck.FileSHA256(ctx, disk)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("checksumming the disk: %w", err))
	}
	m := in.Manifest
	m.Disk, m.SHA256, m.Generalized = filepath.Base(disk), sum, true
	m.Source.Disk, m.Source.SHA256 = in.DiskPath, in.Manifest.SHA256
	if accel, ok := state.Get(qemuvm.StateAccelerator).(string); ok {
		m.Accelerator = accel
	}
	if hyperv, ok := state.Get(qemuvm.StateHyperV).([]string); ok {
		m.HyperVEnlightenments = hyperv
	}
	m.RemovedAppxPackages, _ = state.Get(stateRemovedAppx).([]string)
	if m.RemovedAppxPackages == nil {
		m.RemovedAppxPackages = []string{}
	}
	m.CloudbaseInit, _ = state.Get(stateCloudbaseInit).(bool)
	closed, _ := state.Get(stateWinRMClosed).(bool)
	m.ImageWinRM = &winrmsec.ImageWinRM{BuildRemoved: closed, HTTPSAtFirstBoot: m.CloudbaseInit && s.HTTPSAtFirstBoot}
	if m.CloudbaseInit && s.CloudbaseInitUser != "" {
		// cloudbase-init creates this account on the instance and sets
		// its password (Nova's set-password): the image's admin user now.
		m.AdminUser = s.CloudbaseInitUser
	}
	if ovmf, ok := state.Get(qemuvm.StateOVMF).(qemuvm.OVMF); ok && ovmf.Code != "" {
		m.EFIFirmwareCode, _ = filepath.Abs(ovmf.Code)
	}

	files := []string{disk}
	if m.EFIVars != "" {
		m.EFIVars = qemuvm.EFIVarsName
		files = append(files, filepath.Join(s.OutputDir, qemuvm.EFIVarsName))
		// Read again: Windows may have updated db or dbx while it ran.
		m.SecureBootCertificates = qemuvm.ManifestSecureBootCertificates(ui, filepath.Join(s.OutputDir, qemuvm.EFIVarsName))
	}
	if m.TPM {
		m.TPMState = qemuvm.TPMStateDirName
		_ = filepath.WalkDir(filepath.Join(s.OutputDir, qemuvm.TPMStateDirName), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	if serial := filepath.Join(s.OutputDir, qemuvm.SerialLogName); steps.FileExists(serial) {
		files = append(files, serial)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	path := filepath.Join(s.OutputDir, s.VMName+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("writing the manifest: %w", err))
	}
	s.written = path
	files = append(files, path)
	ui.Say("Manifest " + path)
	state.Put(stateArtifact, &Artifact{Dir: s.OutputDir, Manifest: m, ManifestPath: path, files: files})
	return multistep.ActionContinue
}

// Cleanup removes the manifest if the run failed after writing it.
func (s *stepWriteManifest) Cleanup(state multistep.StateBag) {
	if s.written != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.written)
	}
}
