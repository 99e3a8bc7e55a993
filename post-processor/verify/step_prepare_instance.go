package verify

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-uuid"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/crypto/ssh"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// instance is the throwaway VM's files and identity: everything lives in a
// temporary directory removed afterwards, so the artifact is never written.
type instance struct {
	Dir         string
	Disk        string // qcow2 overlay backed by the artifact's disk
	ConfigDrive string // "" without config_drive
	MAC         string
	Metadata    Metadata
	Key         *rsa.PrivateKey
}

// stepPrepareInstance creates the instance: an overlay of the artifact's
// disk, copies of its UEFI variables and TPM state, an SSH key pair, the
// metadata and the config drive.
//
// Uses state: "ui", StateDriver (an OverlayDriver), stateInput.
// Produces state: stateInstance, StateDiskPath, StateOVMF (UEFI), StateGuestMAC,
// "cd_path" (the config drive, attached as the one CD).
type stepPrepareInstance struct {
	Config   *Config
	Code     qemuvm.OVMF
	TempRoot string
	// CreateDisk creates the instance's disk at dst (Linux: larger than
	// the image, as a flavor's root disk); nil: an overlay of the image.
	CreateDisk func(dst string) error
	// UserData is the instance's user data; nil: UserDataScript.
	UserData func(uuid string) []byte

	dir string
}

func (s *stepPrepareInstance) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	in := state.Get(stateInput).(*inputImage)
	c := s.Config
	dir, err := os.MkdirTemp(s.TempRoot, "winbake-verify-")
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("creating the instance directory: %w", err))
	}
	s.dir = dir
	inst := &instance{Dir: dir, Disk: filepath.Join(dir, "instance.qcow2"), MAC: qemuvm.RandomMAC()}
	ui.Say(fmt.Sprintf("Booting a throwaway overlay of %s (the artifact is not changed)", in.DiskPath))
	if s.CreateDisk != nil {
		if err := s.CreateDisk(inst.Disk); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("creating the instance disk: %w", err))
		}
	} else {
		overlays, ok := state.Get(qemuvm.StateDriver).(qemuvm.OverlayDriver)
		if !ok {
			return steps.Halt(state, ui, fmt.Errorf("the driver cannot create qcow2 overlays"))
		}
		if err := overlays.CreateOverlay(inst.Disk, in.DiskPath); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("creating the overlay disk: %w", err))
		}
	}
	state.Put(qemuvm.StateDiskPath, inst.Disk)
	state.Put(qemuvm.StateGuestMAC, inst.MAC)
	if in.EFIVarsPath != "" {
		vars := filepath.Join(dir, qemuvm.EFIVarsName)
		if err := qemuvm.CopyFile(in.EFIVarsPath, vars, 0o600); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("copying the UEFI variables: %w", err))
		}
		ovmf := s.Code
		ovmf.Vars, ovmf.VarsFormat = vars, qemuvm.FlashFormat(vars)
		state.Put(qemuvm.StateOVMF, ovmf)
	}
	if in.TPMStateDir != "" {
		if err := qemuvm.CopyTree(in.TPMStateDir, filepath.Join(dir, qemuvm.TPMStateDirName)); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("copying the TPM state: %w", err))
		}
	}

	if inst.Key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("generating the instance's SSH key: %w", err))
	}
	pub, err := ssh.NewPublicKey(&inst.Key.PublicKey)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	id, err := uuid.GenerateUUID()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	inst.Metadata = Metadata{
		UUID: id, Hostname: c.Hostname,
		PublicKeys: map[string]string{"winbake-verify": string(ssh.MarshalAuthorizedKey(pub))},
		UserData:   UserDataScript(id),
	}
	if s.UserData != nil {
		inst.Metadata.UserData = s.UserData(id)
	}
	if *c.InjectAdminPassword {
		inst.Metadata.AdminPass = c.AdminPassword
	}
	if *c.ConfigDrive {
		inst.ConfigDrive = filepath.Join(dir, "config-drive.iso")
		if err := WriteConfigDrive(inst.ConfigDrive, inst.Metadata, inst.MAC); err != nil {
			return steps.Halt(state, ui, err)
		}
		state.Put("cd_path", inst.ConfigDrive)
		ui.Say(fmt.Sprintf("Config drive (config-2): instance %s, hostname %s", id, c.Hostname))
	}
	state.Put(stateInstance, inst)
	return multistep.ActionContinue
}

// Cleanup removes the instance directory: overlay, config drive, copies.
func (s *stepPrepareInstance) Cleanup(multistep.StateBag) {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
