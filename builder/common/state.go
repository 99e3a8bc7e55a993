package common

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// State keys of the builders' steps (the VM runtime's are in qemuvm).
const (
	// StateDiskBacking is the source image the disk is an overlay on,
	// until StepFlattenDisk makes it standalone.
	StateDiskBacking = "disk_backing"
	// StateSerialConsole is the *qemuvm.SerialConsole following the VM's
	// serial console (qemuvm's key: qemuvm.StepBootCommand reads it).
	StateSerialConsole = qemuvm.StateSerialConsole
)

// forget clears key in state. The SDK's BasicStateBag.Remove takes no lock
// (packer-plugin-sdk v0.6.10, multistep/statebag.go) while its runner puts
// multistep.StateCancelled from another goroutine when the build is
// cancelled, so Cleanups store nil instead: every reader here asserts the
// value's type, and nil reads as absent.
func forget(state multistep.StateBag, key string) {
	state.Put(key, nil)
}
