package libvirt

import (
	"context"
	"fmt"
	"net/url"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepConnectLibvirt connects to libvirt_uri, checks the pool, and makes
// sure no domain or disk volume of the VM's name exists (the build would
// otherwise remove what is not its own).
//
// Uses state: "ui".
// Produces state: stateDriver.
type stepConnectLibvirt struct {
	URI      *url.URL
	Pool     string
	VMName   string
	DiskName string
	// connect is replaced in tests.
	connect func(*url.URL) (Driver, error)

	driver Driver
}

func (s *stepConnectLibvirt) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	ui.Say("Connecting to libvirt at " + s.URI.Redacted())
	driver, err := s.connect(s.URI)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	s.driver = driver
	state.Put(stateDriver, driver)
	if err := driver.CheckPool(s.Pool); err != nil {
		return steps.Halt(state, ui, err)
	}
	if exists, err := driver.DomainExists(s.VMName); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("vm_name: looking up domain %q: %w", s.VMName, err))
	} else if exists {
		return steps.Halt(state, ui, fmt.Errorf("vm_name: a domain called %q already exists on the hypervisor; remove it (virsh undefine --nvram --tpm %s) or choose another vm_name", s.VMName, s.VMName))
	}
	if exists, err := driver.VolumeExists(s.Pool, s.DiskName); err != nil {
		return steps.Halt(state, ui, err)
	} else if exists {
		return steps.Halt(state, ui, fmt.Errorf("vm_name: pool %q already holds a volume %q; delete it (virsh vol-delete %s --pool %s) or choose another vm_name", s.Pool, s.DiskName, s.DiskName, s.Pool))
	}
	return multistep.ActionContinue
}

// Cleanup names what the later steps' Cleanups (which run before it)
// could not remove from the hypervisor, and disconnects.
func (s *stepConnectLibvirt) Cleanup(state multistep.StateBag) {
	reportLeftBehind(state, s.URI.Redacted())
	if s.driver != nil {
		_ = s.driver.Close()
		s.driver = nil
	}
}
