// Package sysprep implements the winbake-sysprep post-processor: it
// generalizes a copy of a winbake builder's golden image with sysprep and
// hands back the generalized image, leaving the golden image untouched.
package sysprep

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// PostProcessor is the winbake-sysprep post-processor.
type PostProcessor struct {
	config Config
	// driver and host are replaced in tests.
	driver qemuvm.Driver
	host   *qemuvm.HostPaths
}

var _ packersdk.PostProcessor = new(PostProcessor)

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error { return p.config.Prepare(raws...) }

// PostProcess generalizes a copy of the input artifact's disk. The golden
// image is kept unless the user sets keep_input_artifact = false: it is
// what the next build starts from.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	keep := p.config.KeepInputArtifact || input != nil && image.IsGolden(input)
	in, err := readInput(input)
	if err != nil {
		return nil, keep, false, err
	}
	if err := checkInputDisk(ctx, ui, in); err != nil {
		return nil, keep, false, err
	}
	out, name, err := p.outputPaths(in)
	if err != nil {
		return nil, keep, false, err
	}
	host := qemuvm.DefaultHostPaths
	if p.host != nil {
		host = *p.host
	}
	ovmf, err := host.ImageOVMF(&in.Manifest.Manifest, p.config.EFIFirmwareCode)
	if err != nil {
		return nil, keep, false, err
	}
	driver := p.driver
	if driver == nil {
		driver = &qemuvm.QemuDriver{}
	}
	// The golden image's WinRM, as its build reached it: HTTPS trusting
	// only the build's certificate, or HTTP through the loopback forward.
	build := in.BuildWinRM()
	comm := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{
		WinRMUser: p.config.WinRMUsername, WinRMPassword: p.config.WinRMPassword,
		WinRMTimeout: p.config.WinRMTimeout, WinRMPort: build.Port, WinRMUseSSL: build.HTTPS(),
	}}
	if errs := comm.Prepare(nil); len(errs) > 0 {
		return nil, keep, false, errors.Join(errs...)
	}

	// The VM watch ends the run through this context when QEMU exits.
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	state := new(multistep.BasicStateBag)
	state.Put("ui", ui)
	state.Put(qemuvm.StateStopBuild, context.CancelFunc(stopRun))
	state.Put(qemuvm.StateDriver, driver)
	state.Put(stateInput, in)
	if err := steps.Run(ctx, state, p.steps(in, out, name, ovmf, host, comm, build), "sysprep"); err != nil {
		return nil, keep, false, err
	}
	art, ok := state.Get(stateArtifact).(*Artifact)
	if !ok {
		return nil, keep, false, errors.New("sysprep produced no artifact")
	}
	return art, keep, false, nil
}

// outputPaths resolves output_directory and vm_name for the input.
func (p *PostProcessor) outputPaths(in *inputImage) (dir, name string, err error) {
	dir = p.config.OutputDir
	if dir == "" {
		dir = in.Dir + "-sysprep"
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", "", fmt.Errorf("output_directory: %w", err)
	}
	if rel, err := filepath.Rel(in.Dir, dir); err == nil && (rel == "." || filepath.IsLocal(rel)) {
		return "", "", fmt.Errorf("output_directory: %s is (inside) the input's directory %s; discarding the input would delete it, choose another directory", dir, in.Dir)
	}
	name = p.config.VMName
	if name == "" {
		name = in.Name
	}
	return dir, name, nil
}

// steps is the step list for one input.
func (p *PostProcessor) steps(in *inputImage, out, name string, ovmf qemuvm.OVMF, host qemuvm.HostPaths, comm *communicator.Config, build winrmsec.BuildWinRM) []multistep.Step {
	c := &p.config
	tpm := in.Manifest.TPM
	vm := c.VM()
	vm.Firmware, vm.TPM, vm.MachineType = in.Manifest.Firmware, &tpm, in.Manifest.Machine
	vm.DiskInterface, vm.NetDevice = in.Manifest.DiskInterface, in.Manifest.NetDevice
	// Windows' default HTTP listener, which the run goes on with once the
	// build's WinRM is closed, when the build used another port.
	var httpForward []multistep.Step
	var extra []qemuvm.PortForward
	if build.Port != winrmsec.HTTPPort {
		httpForward = append(httpForward, &qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax, StateKey: stateHTTPHostPort, Purpose: "WinRM over HTTP (Windows' default listener)"})
		extra = append(extra, qemuvm.PortForward{StateKey: stateHTTPHostPort, GuestPort: winrmsec.HTTPPort})
	}
	steps := []multistep.Step{
		&stepFetchCloudbaseInit{Config: c.CloudbaseInit},
		&commonsteps.StepOutputDir{Force: c.PackerForce, Path: out},
		&stepCopyDisk{Path: filepath.Join(out, name+".qcow2")},
		&stepCopyFirmwareState{OutputDir: out, Code: ovmf},
		&qemuvm.StepStartTPM{Enabled: tpm, OutputDir: out},
		&qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax},
	}
	steps = append(steps, httpForward...)
	var pinned qemuvm.WinRMTransporter
	if build.HTTPS() {
		// The golden image's WinRM over HTTPS: trust only the build's
		// certificate, which its manifest records.
		pinned = winrmsec.Pinned(build.Certificate, false)
	}
	return append(steps,
		&qemuvm.StepRunVM{VM: &vm, Name: name, OutputDir: out, GuestPort: build.Port, Host: host, SecureBoot: in.Manifest.SecureBoot, ExtraForwards: extra},
		&qemuvm.StepWatchVM{SerialLog: filepath.Join(out, qemuvm.SerialLogName)},
		&qemuvm.StepConnectWinRM{
			Transporter: pinned,
			Config:      comm,
			Host:        func(multistep.StateBag) (string, error) { return "127.0.0.1", nil },
			WinRMPort: func(state multistep.StateBag) (int, error) {
				port, ok := state.Get(qemuvm.StateHostPort).(int)
				if !ok {
					return 0, errors.New("no host port was forwarded to WinRM")
				}
				return port, nil
			},
		},
		&stepEnsureAgent{},
		&stepCheckPending{},
		&stepRemoveAppx{Names: c.RemoveAppxPackages},
		&stepInstallCloudbaseInit{Config: c.CloudbaseInit},
		&stepTrim{Skip: c.SkipTrim},
		&stepCloseWinRM{Build: build, User: c.WinRMUsername, Password: c.WinRMPassword, Timeout: c.WinRMTimeout},
		&stepSysprep{Timeout: c.Timeout},
		&stepWriteManifest{OutputDir: out, VMName: name, CloudbaseInitUser: cloudbaseInitUser(c.CloudbaseInit),
			HTTPSAtFirstBoot: c.CloudbaseInit.winrmHTTPSAtFirstBoot()},
	)
}

func cloudbaseInitUser(ci *CloudbaseInitConfig) string {
	if ci == nil {
		return ""
	}
	return ci.Username
}
