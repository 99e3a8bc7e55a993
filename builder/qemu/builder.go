package qemu

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Builder installs Windows from an ISO into a qcow2 disk under QEMU.
type Builder struct {
	config Config
	// driver and host are replaced in tests.
	driver qemuvm.Driver
	host   *qemuvm.HostPaths
}

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	return wbcommon.GeneratedDataNames, warnings, nil
}

// Steps returns the build's step list for the prepared configuration.
func (b *Builder) Steps(ovmf qemuvm.OVMF, host qemuvm.HostPaths) []multistep.Step {
	c := &b.config
	guestPort := c.Comm.WinRMPort
	if guestPort == 0 {
		guestPort = 5985
	}
	var steps []multistep.Step
	if c.SourceImageConfig.Enabled() {
		tpmFrom := ""
		if c.TPMEnabled() {
			tpmFrom = c.SourceImageConfig.Manifest().TPMStatePath()
		}
		source := c.SourceImageConfig.Manifest().BuildWinRM()
		steps = append(steps,
			&commonsteps.StepOutputDir{Force: c.PackerForce, Path: c.OutputDir},
			&wbcommon.StepSourceDisk{Source: c.SourceImage, Checksum: c.SourceImageChecksum, Copy: c.SourceImageCopy, OutputDir: c.OutputDir, Name: c.VMName + ".qcow2"},
			&wbcommon.StepCopyTPMState{From: tpmFrom, OutputDir: c.OutputDir},
			&wbcommon.StepPrepareWinRM{Unattend: &c.UnattendConfig, Comm: &c.Comm, Source: &source},
		)
	} else {
		steps = append(steps,
			&commonsteps.StepDownload{
				Checksum:    c.ISOChecksum,
				Description: "Windows install ISO",
				Extension:   c.TargetExtension,
				ResultKey:   "iso_path",
				TargetPath:  c.TargetPath,
				Url:         c.ISOUrls,
			},
			&wbcommon.StepCheckInstallImage{ImageName: c.ImageName},
		)
		if download := c.MediaConfig.VirtioDownloadStep(); download != nil {
			steps = append(steps, download, &wbcommon.StepCheckVirtioDrivers{})
		}
		steps = append(steps,
			&wbcommon.StepPrepareWinRM{Unattend: &c.UnattendConfig, Comm: &c.Comm},
			&wbcommon.StepCreateUnattendMedia{Unattend: &c.UnattendConfig, Media: &c.MediaConfig, Firmware: c.Firmware},
			&commonsteps.StepOutputDir{Force: c.PackerForce, Path: c.OutputDir},
			&wbcommon.StepCreateDisk{OutputDir: c.OutputDir, Name: c.VMName + ".qcow2", SizeMB: c.DiskSizeMB},
		)
	}
	steps = append(steps,
		&wbcommon.StepCopyEFIVars{Firmware: c.Firmware, OVMF: ovmf, OutputDir: c.OutputDir},
		&qemuvm.StepStartTPM{Enabled: c.TPMEnabled(), OutputDir: c.OutputDir},
	)
	if c.Network == qemuvm.NetworkUser {
		steps = append(steps, &qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax})
	}
	steps = append(steps,
		&wbcommon.StepExportHostAddress{Network: c.Network, Bridge: c.Bridge},
		&qemuvm.StepRunVM{VM: &c.VMConfig, Name: c.VMName, OutputDir: c.OutputDir, GuestPort: guestPort, UserArgs: c.QemuArgs, Host: host,
			SecureBoot: c.SecureBoot},
		&wbcommon.StepWatchSerial{Path: filepath.Join(c.OutputDir, qemuvm.SerialLogName)},
		&qemuvm.StepWatchVM{SerialLog: filepath.Join(c.OutputDir, qemuvm.SerialLogName), PowerOffEnds: c.Comm.Type == "none"},
		&qemuvm.StepBootCommand{BootWait: c.BootWait, Keys: c.bootKeys, TCGKeys: c.bootKeysTCG, UntilCDBoot: c.bootKeysTCG != nil},
		&qemuvm.StepConnectWinRM{
			Config: &c.Comm,
			Host:   c.winrmHost,
			WinRMPort: func(state multistep.StateBag) (int, error) {
				if c.Network == qemuvm.NetworkBridge {
					return guestPort, nil
				}
				port, ok := state.Get(qemuvm.StateHostPort).(int)
				if !ok {
					return 0, errors.New("no host port was forwarded to WinRM")
				}
				return port, nil
			},
		},
		new(commonsteps.StepProvision),
		&wbcommon.StepCheckGuestAgent{CommunicatorType: c.Comm.Type},
		&wbcommon.StepReadUpdatesRecord{CommunicatorType: c.Comm.Type},
		&wbcommon.StepShutdown{Timeout: c.ShutdownTimeout},
		new(wbcommon.StepFlattenDisk),
		&stepWriteManifest{config: c},
	)
	return steps
}

// winrmHost is where WinRM is reached: the port forward on 127.0.0.1 on
// the user network; on a bridge, winrm_host or the guest's address from
// the host's neighbour table (StepConnect retries until it appears).
func (c *Config) winrmHost(state multistep.StateBag) (string, error) {
	if c.Network != qemuvm.NetworkBridge {
		return "127.0.0.1", nil
	}
	if c.Comm.WinRMHost != "" {
		return c.Comm.WinRMHost, nil
	}
	mac, _ := state.Get(qemuvm.StateGuestMAC).(string)
	ip, err := qemuvm.LookupGuestAddress(qemuvm.ARPTable, mac, c.Bridge)
	if err == nil && ip == "" {
		err = fmt.Errorf("no address for the guest's MAC %s on %s yet", mac, c.Bridge)
	}
	return ip, err
}

func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	c := &b.config
	host := qemuvm.DefaultHostPaths
	if b.host != nil {
		host = *b.host
	}
	var ovmf qemuvm.OVMF
	if c.Firmware == qemuvm.FirmwareUEFI {
		if c.EFIFirmwareCode != "" {
			ovmf = qemuvm.OVMF{Code: c.EFIFirmwareCode, Vars: c.EFIFirmwareVars, CodeFormat: imageFormat(c.EFIFirmwareCode), VarsFormat: imageFormat(c.EFIFirmwareVars)}
		} else {
			var err error
			if c.SecureBoot {
				ovmf, err = host.FindSecureBootOVMF()
			} else {
				ovmf, err = host.FindOVMF()
			}
			if err != nil {
				return nil, err
			}
		}
		// A source image keeps its UEFI variables (boot entries, keys).
		if vars := c.SourceImageConfig.Manifest().EFIVarsPath(); vars != "" {
			ovmf.Vars, ovmf.VarsFormat = vars, imageFormat(vars)
		}
	}
	driver := b.driver
	if driver == nil {
		driver = &qemuvm.QemuDriver{}
	}

	// The VM watch ends the build through this context when QEMU exits.
	ctx, stopBuild := context.WithCancel(ctx)
	defer stopBuild()
	state := new(multistep.BasicStateBag)
	state.Put(qemuvm.StateStopBuild, context.CancelFunc(stopBuild))
	state.Put("generated_data", map[string]interface{}{})
	state.Put("config", c)
	state.Put("debug", c.PackerDebug)
	state.Put("hook", hook)
	state.Put("ui", ui)
	state.Put(qemuvm.StateDriver, driver)

	runner := commonsteps.NewRunnerWithPauseFn(b.Steps(ovmf, host), c.PackerConfig, ui, state)
	runner.Run(ctx, state)

	if err := steps.Failure(state, "build"); err != nil {
		return nil, err
	}
	art, ok := state.Get(stateArtifact).(*Artifact)
	if !ok {
		return nil, fmt.Errorf("the build produced no artifact")
	}
	return art, nil
}
