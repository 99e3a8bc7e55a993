package qemuvm

// State keys shared by the VM steps.
const (
	// StateDriver holds the Driver.
	StateDriver = "driver"
	// StateDiskPath is the qcow2 system disk in the output directory.
	StateDiskPath = "disk_path"
	// StateOVMF is the OVMF firmware, its Vars being the VM's own copy.
	StateOVMF = "ovmf"
	// StateTPMSocket is swtpm's control socket.
	StateTPMSocket = "tpm_socket"
	// StateHostPort is the host port on 127.0.0.1 forwarded to WinRM.
	StateHostPort = "winrm_host_port"
	// StateGuestMAC is the NIC's MAC address on a bridge network, by which
	// the guest's address is found.
	StateGuestMAC = "guest_mac"
	// StateVirtioWinISO is the local path of the virtio-win ISO.
	StateVirtioWinISO = "virtio_win_iso_path"
	// StateAccelerator is the accelerator the VM runs with ("kvm"/"tcg").
	StateAccelerator = "accelerator"
	// StateSerialConsole is the *SerialConsole following the VM's serial
	// console.
	StateSerialConsole = "serial_console"
)
