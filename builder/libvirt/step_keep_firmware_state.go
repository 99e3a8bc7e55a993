package libvirt

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

// LibvirtSwtpmDir is where libvirt keeps its domains' TPM state, one
// directory per domain UUID holding tpm2/.
const LibvirtSwtpmDir = "/var/lib/libvirt/swtpm"

// stepKeepFirmwareState copies the powered-off domain's UEFI variables
// (its NVRAM file) and TPM state into the output directory, as efivars.fd
// and tpm/ like winbake-qemu's artifact, so winbake-sysprep and
// winbake-verify boot the image with the firmware state it was installed
// with. libvirt removes both with the domain. On a remote hypervisor they
// are files on that host that no libvirt API returns: they stay there and
// the step says so.
//
// Uses state: "ui", stateNVRAMPath, stateDomainUUID.
// Produces state: stateKeptEFIVars, stateKeptTPMState.
type stepKeepFirmwareState struct {
	Config *Config
	// SwtpmDir replaces LibvirtSwtpmDir (tests).
	SwtpmDir string

	copied []string
}

func (s *stepKeepFirmwareState) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	c := s.Config
	wantVars, wantTPM := c.Firmware == qemuvm.FirmwareUEFI, c.TPMEnabled()
	if !wantVars && !wantTPM {
		return multistep.ActionContinue
	}
	if c.uri != nil && !isLocalURI(c.uri) {
		ui.Say("The UEFI variables and TPM state stay on the remote hypervisor (libvirt removes them with the domain); the artifact has none, so winbake-sysprep cannot boot it under the same firmware state")
		return multistep.ActionContinue
	}
	if wantVars {
		nvram, _ := state.Get(stateNVRAMPath).(string)
		if nvram == "" {
			return steps.Halt(state, ui, fmt.Errorf("libvirt did not name the domain's NVRAM file in its XML; the UEFI variables cannot be kept"))
		}
		dst := filepath.Join(c.OutputDir, qemuvm.EFIVarsName)
		s.copied = append(s.copied, dst)
		if err := qemuvm.CopyFile(nvram, dst, 0o600); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("keeping the UEFI variables %s: %w", nvram, err))
		}
		state.Put(stateKeptEFIVars, true)
		ui.Say(fmt.Sprintf("UEFI variables %s kept as %s", nvram, dst))
	}
	if wantTPM {
		uuid, _ := state.Get(stateDomainUUID).(string)
		root := s.SwtpmDir
		if root == "" {
			root = LibvirtSwtpmDir
		}
		src := filepath.Join(root, uuid, "tpm2")
		if fi, err := os.Stat(src); uuid == "" || err != nil || !fi.IsDir() {
			return steps.Halt(state, ui, fmt.Errorf("keeping the TPM state: libvirt's swtpm directory %s for domain UUID %q is not there", src, uuid))
		}
		dst := filepath.Join(c.OutputDir, qemuvm.TPMStateDirName)
		s.copied = append(s.copied, dst)
		if err := qemuvm.CopyTree(src, dst); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("keeping the TPM state %s: %w", src, err))
		}
		state.Put(stateKeptTPMState, true)
		ui.Say(fmt.Sprintf("TPM state %s kept as %s", src, dst))
	}
	return multistep.ActionContinue
}

// Cleanup removes the copies when the build did not succeed.
func (s *stepKeepFirmwareState) Cleanup(state multistep.StateBag) {
	if !steps.BuildFailed(state) {
		return
	}
	for _, p := range s.copied {
		_ = os.RemoveAll(p)
	}
}
