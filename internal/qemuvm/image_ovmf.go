package qemuvm

import (
	"bytes"
	"io"
	"os"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// ImageOVMF returns the UEFI firmware to boot a winbake image with (zero
// for a BIOS image): override when set (a post-processor's
// efi_firmware_code), else the firmware the build booted while it exists
// on this host (the manifest's efi_firmware_code), else what the host
// offers. A Secure Boot image keeps Secure Boot firmware (with SMM); its
// variables hold the keys.
func (p HostPaths) ImageOVMF(m *image.Manifest, override string) (OVMF, error) {
	if m.Firmware != FirmwareUEFI {
		return OVMF{}, nil
	}
	code := override
	if code == "" && m.EFIFirmwareCode != "" && exists(m.EFIFirmwareCode) {
		code = m.EFIFirmwareCode
	}
	switch {
	case code != "":
		return OVMF{Code: code, CodeFormat: FlashFormat(code), SecureBoot: m.SecureBoot}, nil
	case m.SecureBoot:
		return p.FindSecureBootOVMF()
	default:
		return p.FindOVMF()
	}
}

// Qcow2Magic starts every qcow2 file.
var Qcow2Magic = []byte{'Q', 'F', 'I', 0xfb}

// FlashFormat tells a qcow2 flash image from a raw one by its magic.
func FlashFormat(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "raw"
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err == nil && bytes.Equal(magic, Qcow2Magic) {
		return "qcow2"
	}
	return "raw"
}
