package verify

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// verifyLinux boots a Linux image as Nova would (config drive, a root disk
// larger than the image) and checks what cloud-init did.
func (p *PostProcessor) verifyLinux(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) error {
	c := &p.config
	if c.Mode == ModeMAAS {
		return fmt.Errorf("mode: Linux images are verified in \"openstack\" mode")
	}
	if !*c.ConfigDrive {
		return fmt.Errorf("config_drive: a Linux image reads its metadata from the config drive here; set config_drive = true")
	}
	li, in, err := readLinuxInput(ctx, c, input)
	if err != nil {
		return err
	}
	if _, err := diskcheck.Check(ctx, "disk", li.Disk); err != nil {
		return err
	}
	if li.OSRelease != nil {
		ui.Say(fmt.Sprintf("Linux image %s: %s (os-release ID %s, VERSION_ID %q)", li.Disk, li.OSRelease.PrettyName, li.OSRelease.ID, li.OSRelease.VersionID))
	} else {
		ui.Say(fmt.Sprintf("Linux image %s: its os-release could not be read (%v)", li.Disk, li.ReadErr))
	}
	user, err := sshUser(c, li)
	if err != nil {
		return err
	}
	host := qemuvm.DefaultHostPaths
	if p.host != nil {
		host = *p.host
	}
	var ovmf qemuvm.OVMF
	if in.Manifest.Firmware == qemuvm.FirmwareUEFI {
		if c.EFIFirmwareCode != "" {
			return fmt.Errorf("efi_firmware_code: a Linux image boots with fresh variables from the host's OVMF; leave efi_firmware_code out")
		}
		if ovmf, err = host.FindOVMF(); err != nil {
			return fmt.Errorf("firmware = \"uefi\": %w", err)
		}
		// The instance gets a copy of the empty variable store, as Nova
		// gives a new instance.
		in.EFIVarsPath = ovmf.Vars
	}
	driver := p.driver
	if driver == nil {
		driver = &qemuvm.QemuDriver{}
	}
	state := new(multistep.BasicStateBag)
	state.Put("ui", ui)
	state.Put(qemuvm.StateDriver, driver)
	state.Put(stateInput, in)

	vm := c.VM()
	off := false
	vm.Firmware, vm.TPM, vm.MachineType = in.Manifest.Firmware, &off, in.Manifest.Machine
	vm.DiskInterface, vm.NetDevice = in.Manifest.DiskInterface, in.Manifest.NetDevice
	prepare := &stepPrepareInstance{
		Config: c, Code: ovmf, TempRoot: os.Getenv("PACKER_TMP_DIR"),
		CreateDisk: linuxGrowDisk(li, c.DiskSizeMB), UserData: LinuxUserData,
	}
	seq := []multistep.Step{
		prepare,
		&stepMetadataService{Enabled: *c.MetadataService, Mode: c.Mode},
		&qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax},
		&stepRunVM{VM: &vm, Name: in.Name + "-verify", Host: host, GuestPort: 22, prepare: prepare},
		&stepWaitFirstBoot{Timeout: c.Timeout, Finished: linuxFirstBootDone, What: "cloud-init's final message"},
		&stepCheckLinux{Config: c, Image: li, User: user, ReportDir: c.ReportDirectory},
	}
	return steps.Run(ctx, state, seq, "verification")
}
