// Package qemuvm is the QEMU VM runtime every component that boots Windows
// drives: the Driver (QemuDriver, DriverMock), the QEMU argument model
// (VMSpec, QemuArg) and the virtual hardware configuration (VMConfig), the
// host probe and OVMF firmware lookup, the serial console, the user-mode
// network with its port forwards and reservations, the TPM, the Hyper-V
// enlightenments, the boot command (ParseBootCommand; StepBootCommand
// types it through a BootKeySender: QMP, or libvirt's send-key), and the
// steps that run the VM, forward WinRM, watch the VM and connect to WinRM,
// one per file, each Cleanup undoing what its Run did.
package qemuvm
