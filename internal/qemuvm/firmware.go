package qemuvm

import "github.com/winbake/packer-plugin-winbake/internal/image"

// Firmware names accepted by the builders' `firmware` option: the
// manifest's `firmware` values.
const (
	FirmwareBIOS = image.FirmwareBIOS
	FirmwareUEFI = image.FirmwareUEFI
)

// EFIVarsName is the VM's UEFI variable store in the output directory; it
// is kept with the artifact (boot entries, Secure Boot keys).
const EFIVarsName = "efivars.fd"
