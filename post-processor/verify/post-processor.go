// Package verify implements the winbake-verify post-processor: it boots a
// throwaway overlay of a generalized image the way OpenStack or MAAS will
// (config drive, metadata service), checks that the first boot does what
// the cloud expects, and fails the pipeline before anything is published
// when it does not.
package verify

import (
	"context"
	"errors"
	"os"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// PostProcessor is the winbake-verify post-processor.
type PostProcessor struct {
	config Config
	driver qemuvm.Driver
	host   *qemuvm.HostPaths
}

var _ packersdk.PostProcessor = new(PostProcessor)

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error { return p.config.Prepare(raws...) }

// PostProcess verifies the input and hands it on unchanged.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	// The input is the image being verified: it is passed on, never
	// discarded.
	const keep, forceKeep = true, true
	if osTypeOf(&p.config, input) == OSLinux {
		if err := p.verifyLinux(ctx, ui, input); err != nil {
			return nil, keep, forceKeep, err
		}
		return input, keep, forceKeep, nil
	}
	in, err := readInput(input)
	if err != nil {
		return nil, keep, forceKeep, err
	}
	if err := checkInputDisk(ctx, ui, input, in); err != nil {
		return nil, keep, forceKeep, err
	}
	host := qemuvm.DefaultHostPaths
	if p.host != nil {
		host = *p.host
	}
	ovmf, err := host.ImageOVMF(&in.Manifest.Manifest, p.config.EFIFirmwareCode)
	if err != nil {
		return nil, keep, forceKeep, err
	}
	driver := p.driver
	if driver == nil {
		driver = &qemuvm.QemuDriver{}
	}
	// The image's documented final state: WinRM over HTTPS where
	// cloudbase-init creates the listener; images from before
	// winbake-sysprep recorded it were meant to keep WinRM.
	if p.config.KeepWinRM == nil {
		keep := in.Manifest.ImageWinRM == nil || in.Manifest.ImageWinRM.HTTPSAtFirstBoot
		p.config.KeepWinRM = &keep
		defer func() { p.config.KeepWinRM = nil }()
	}
	comm := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{
		WinRMUser: p.config.Username, WinRMPassword: p.config.AdminPassword,
		WinRMTimeout: p.config.WinRMTimeout, WinRMPort: 5985,
	}}
	if errs := comm.Prepare(nil); len(errs) > 0 {
		return nil, keep, forceKeep, errors.Join(errs...)
	}
	state := new(multistep.BasicStateBag)
	state.Put("ui", ui)
	state.Put(qemuvm.StateDriver, driver)
	state.Put(stateInput, in)
	if err := steps.Run(ctx, state, p.steps(in, ovmf, host, comm), "verification"); err != nil {
		return nil, keep, forceKeep, err
	}
	return input, keep, forceKeep, nil
}

func (p *PostProcessor) steps(in *inputImage, ovmf qemuvm.OVMF, host qemuvm.HostPaths, comm *communicator.Config) []multistep.Step {
	c := &p.config
	tpm := in.Manifest.TPM
	vm := c.VM()
	vm.Firmware, vm.TPM, vm.MachineType = in.Manifest.Firmware, &tpm, in.Manifest.Machine
	vm.DiskInterface, vm.NetDevice = in.Manifest.DiskInterface, in.Manifest.NetDevice
	prepare := &stepPrepareInstance{Config: c, Code: ovmf, TempRoot: os.Getenv("PACKER_TMP_DIR")}
	return []multistep.Step{
		prepare,
		&stepMetadataService{Enabled: *c.MetadataService, Mode: c.Mode},
		&stepStartTPM{Enabled: tpm, prepare: prepare},
		&qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax},
		&qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax, StateKey: stateHTTPSHostPort, Purpose: "WinRM over HTTPS (port 5986)"},
		&stepRunVM{VM: &vm, Name: in.Name + "-verify", Host: host, SecureBoot: in.Manifest.SecureBoot, prepare: prepare},
		&stepWaitFirstBoot{Timeout: c.Timeout},
		&stepCheck{Config: c, Comm: comm, ReportDir: c.ReportDirectory},
	}
}

// stepStartTPM and stepRunVM are the shared steps with the instance
// directory, known only once stepPrepareInstance ran, as output directory.
type stepStartTPM struct {
	Enabled bool
	prepare *stepPrepareInstance
	inner   *qemuvm.StepStartTPM
}

func (s *stepStartTPM) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	s.inner = &qemuvm.StepStartTPM{Enabled: s.Enabled, OutputDir: s.prepare.dir}
	return s.inner.Run(ctx, state)
}

func (s *stepStartTPM) Cleanup(state multistep.StateBag) {
	if s.inner != nil {
		s.inner.Cleanup(state)
	}
}

type stepRunVM struct {
	VM         *qemuvm.VMConfig
	Name       string
	Host       qemuvm.HostPaths
	SecureBoot bool
	// GuestPort is forwarded from the host: WinRM (5985, when 0) or SSH.
	GuestPort int
	prepare   *stepPrepareInstance
	inner     *qemuvm.StepRunVM
}

func (s *stepRunVM) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	port := s.GuestPort
	if port == 0 {
		port = 5985
	}
	// WinRM's HTTPS port too, when a forward was reserved for it.
	s.inner = &qemuvm.StepRunVM{VM: s.VM, Name: s.Name, OutputDir: s.prepare.dir, GuestPort: port, Host: s.Host, SecureBoot: s.SecureBoot,
		ExtraForwards: []qemuvm.PortForward{{StateKey: stateHTTPSHostPort, GuestPort: 5986}}}
	return s.inner.Run(ctx, state)
}

func (s *stepRunVM) Cleanup(state multistep.StateBag) {
	if s.inner != nil {
		s.inner.Cleanup(state)
	}
}
