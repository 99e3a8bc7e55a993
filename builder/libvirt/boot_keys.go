package libvirt

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// domainKeys types the boot command through libvirt's send-key (Linux
// keycodes), which works on remote hypervisors without VNC.
type domainKeys struct {
	driver Driver
	name   string
}

func (k domainKeys) SendKeys(_ context.Context, qcodes ...string) error {
	return k.driver.SendKeys(k.name, keycodes(qcodes))
}

// bootKeySender is qemuvm.StepBootCommand's Sender for the domain.
//
// Uses state: stateDriver, stateDomainName.
func bootKeySender(state multistep.StateBag) qemuvm.BootKeySender {
	return domainKeys{driver: state.Get(stateDriver).(Driver), name: state.Get(stateDomainName).(string)}
}
