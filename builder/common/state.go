package common

import "github.com/hashicorp/packer-plugin-sdk/multistep"

// State keys shared by the VM steps.
const (
	// StateDriver holds the Driver.
	StateDriver = "driver"
	// StateDiskPath is the qcow2 system disk in the output directory.
	StateDiskPath = "disk_path"
	// StateDiskBacking is the source image the disk is an overlay on,
	// until StepFlattenDisk makes it standalone.
	StateDiskBacking = "disk_backing"
	// StateOVMF is the OVMF firmware, its Vars being the VM's own copy.
	StateOVMF = "ovmf"
	// StateTPMSocket is swtpm's control socket.
	StateTPMSocket = "tpm_socket"
	// StateHostPort is the host port on 127.0.0.1 forwarded to WinRM.
	StateHostPort = "winrm_host_port"
	// StateGuestMAC is the NIC's MAC address on a bridge network, by which
	// the guest's address is found.
	StateGuestMAC = "guest_mac"
	// StateSerialConsole is the *SerialConsole following the VM's serial
	// console.
	StateSerialConsole = "serial_console"
	// StateAccelerator is the accelerator the VM runs with ("kvm"/"tcg").
	StateAccelerator = "accelerator"
)

// forget clears key in state. The SDK's BasicStateBag.Remove takes no lock
// (packer-plugin-sdk v0.6.10, multistep/statebag.go) while its runner puts
// multistep.StateCancelled from another goroutine when the build is
// cancelled, so Cleanups store nil instead: every reader here asserts the
// value's type, and nil reads as absent.
func forget(state multistep.StateBag, key string) {
	state.Put(key, nil)
}
