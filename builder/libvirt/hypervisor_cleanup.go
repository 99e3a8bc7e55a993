package libvirt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// State keys of the cleanup on the hypervisor.
const (
	// stateReconnected is set once a Cleanup tried to connect again.
	stateReconnected = "libvirt_reconnected"
	// stateLeftBehind lists what Cleanups could not remove from the
	// hypervisor, each with the command that removes it.
	stateLeftBehind = "libvirt_left_behind"
)

// reconnector is a Driver whose connection to libvirtd can be made again
// (RPCDriver).
type reconnector interface {
	// Connected reports whether the connection is still up.
	Connected() bool
	// Reconnect dials libvirt_uri again.
	Reconnect() error
}

// cleanupDriver returns the driver a Cleanup removes things with. When the
// connection to libvirtd was lost (libvirtd restarted, the network to a
// remote hypervisor broke), the first Cleanup to notice connects once
// more; the later ones reuse that connection or, when it failed, report
// what they leave behind.
func cleanupDriver(state multistep.StateBag) (Driver, bool) {
	driver, ok := state.Get(stateDriver).(Driver)
	if !ok {
		return nil, false
	}
	r, ok := driver.(reconnector)
	if !ok || r.Connected() {
		return driver, true
	}
	if _, tried := state.GetOk(stateReconnected); tried {
		return driver, true
	}
	state.Put(stateReconnected, true)
	ui := state.Get("ui").(packersdk.Ui)
	if err := r.Reconnect(); err != nil {
		ui.Error(fmt.Sprintf("The connection to libvirtd was lost and connecting again failed (%v); what the build made stays on the hypervisor", err))
	} else {
		ui.Say("The connection to libvirtd was lost; connected again to clean up")
	}
	return driver, true
}

// leftBehind records something a Cleanup could not remove, with the
// command that removes it.
func leftBehind(state multistep.StateBag, what, command string, err error) {
	list, _ := state.Get(stateLeftBehind).([]string)
	state.Put(stateLeftBehind, append(list, fmt.Sprintf("%s (%v; remove it with: %s)", what, err, command)))
}

// reportLeftBehind names what stays on the hypervisor: in the build's
// error when the build failed, as an error message otherwise.
func reportLeftBehind(state multistep.StateBag, uri string) {
	list, _ := state.Get(stateLeftBehind).([]string)
	if len(list) == 0 {
		return
	}
	msg := fmt.Sprintf("left on the hypervisor %s:\n  %s", uri, strings.Join(list, "\n  "))
	state.Get("ui").(packersdk.Ui).Error(msg)
	switch err, ok := state.Get("error").(error); {
	case ok:
		state.Put("error", fmt.Errorf("%w\n%s", err, msg))
	case steps.BuildFailed(state):
		state.Put("error", errors.New(msg))
	}
}
