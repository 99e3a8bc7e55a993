package libvirt

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

// stepWriteManifest checksums the downloaded disk, writes winbake-qemu's
// manifest as <vm_name>.json and puts the Artifact in state. It names the
// UEFI variables and TPM state stepKeepFirmwareState kept (a remote
// hypervisor keeps them, and libvirt removes them with the domain).
//
// Uses state: "ui", stateDiskPath (unless keep_in_pool),
// stateDiskVolume, StateInstallImage, StateAccelerator, StateHyperV,
// stateEFIFirmwareCode, StateQemuGuestAgent, StateUpdates,
// "generated_data".
// Produces state: stateArtifact.
type stepWriteManifest struct {
	config *Config

	written string
}

func (s *stepWriteManifest) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	c := s.config
	media, _ := state.Get(wbcommon.StateInstallImage).(installmedia.Image)
	accel, _ := state.Get(qemuvm.StateAccelerator).(string)
	volume, _ := state.Get(stateDiskVolume).(string)
	if accel == "qemu" {
		accel = qemuvm.AccelTCG
	}

	m := image.Manifest{
		Disk: volume, Format: "qcow2", Firmware: c.Firmware, SecureBoot: c.SecureBoot, TPM: c.TPMEnabled(),
		Machine: c.MachineType, DiskInterface: c.DiskInterface, NetDevice: c.NetDevice, Accelerator: accel,
	}
	m.HyperVEnlightenments, _ = state.Get(qemuvm.StateHyperV).([]string)
	var files []string
	art := &Artifact{dir: c.OutputDir, keep: c.KeepGoldenImage == nil || *c.KeepGoldenImage}
	if c.KeepInPool {
		art.volume = c.Pool + "/" + volume
	} else {
		disk := state.Get(stateDiskPath).(string)
		ui.Say("Checksumming the disk " + disk)
		sum, _, err := diskcheck.FileSHA256(ctx, disk)
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("checksumming the disk: %w", err))
		}
		m.Disk, m.SHA256 = filepath.Base(disk), sum
		files = append(files, disk)
	}
	if kept, _ := state.Get(stateKeptEFIVars).(bool); kept {
		m.EFIVars = qemuvm.EFIVarsName
		files = append(files, filepath.Join(c.OutputDir, qemuvm.EFIVarsName))
		m.SecureBootCertificates = qemuvm.ManifestSecureBootCertificates(ui, filepath.Join(c.OutputDir, qemuvm.EFIVarsName))
	}
	if kept, _ := state.Get(stateKeptTPMState).(bool); kept {
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
	m.ISOChecksum = wbcommon.ManifestISOChecksum(c.ISOChecksum, nil)
	m.AdminUser = c.Comm.WinRMUser
	m.QemuGuestAgent, m.Updates = wbcommon.ManifestGuestFacts(state)
	if rec, ok := state.Get(wbcommon.StateBuildWinRM).(winrmsec.BuildWinRM); ok {
		m.WinRM = &rec
	}
	if c.Firmware == qemuvm.FirmwareUEFI {
		m.EFIFirmwareCode, _ = state.Get(stateEFIFirmwareCode).(string)
	}
	m.Windows.ImageName, m.Windows.EditionID, m.Windows.InstallationType = media.Name, media.EditionID, media.InstallationType
	m.Windows.Version, m.Windows.Arch = media.Version.String(), media.Arch

	b, _ := json.MarshalIndent(m, "", "  ")
	path := filepath.Join(c.OutputDir, c.VMName+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("writing the manifest: %w", err))
	}
	s.written = path
	files = append(files, path)
	ui.Say(fmt.Sprintf("Manifest %s: %s", path, strings.TrimSpace(string(b))))
	art.files, art.manifest = files, m
	art.state = map[string]interface{}{"manifest": path, "generated_data": state.Get("generated_data")}
	state.Put(stateArtifact, art)
	return multistep.ActionContinue
}

// Cleanup removes the manifest if the build failed after writing it.
func (s *stepWriteManifest) Cleanup(state multistep.StateBag) {
	if s.written != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.written)
	}
}
