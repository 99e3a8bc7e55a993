package setup

import (
	"crypto/rand"
	"errors"
)

// Mount points in the guest.
const (
	mediaRoot   = "/run/media"
	windowsRoot = "/run/windows"
	espRoot     = "/run/esp"
)

// Files on the stand-in ISO.
const (
	isoMarker    = "winbake/standin.txt"
	isoKernel    = "boot/vmlinuz"
	isoInitrd    = "boot/initrd.img"
	isoInstall   = "sources/install.wim"
	isoBootImg   = "winbake/grub/boot.img"
	isoCoreImg   = "winbake/grub/core.img"
	isoShim      = "winbake/efi/shimx64.efi"
	isoGrub      = "winbake/efi/grubx64.efi"
	isoGrubCfg   = "winbake/efi/grub.cfg"
	bootX64Path  = "EFI/BOOT/BOOTX64.EFI"
	bootmgfwPath = "EFI/Microsoft/Boot/bootmgfw.efi"
	// The signed GRUB shim loads from its own directory, and where that
	// GRUB's built-in prefix looks for its config.
	grubName    = "grubx64.efi"
	grubCfgPath = "EFI/debian/grub.cfg"
)

// InstallSourceFiles are the files Setup reads from the stand-in ISO.
var InstallSourceFiles = []string{isoMarker, isoKernel, isoInitrd, isoInstall, isoBootImg, isoCoreImg, isoShim, isoGrub, isoGrubCfg}

// Main runs the stand-in: Windows Setup when booted from the ISO
// (winbake.boot=setup), the installed Windows when booted from disk. It
// returns only when the guest should idle (after an error Setup shows).
func Main(log *Log) {
	g := &Guest{Log: log}
	mode := Cmdline()["winbake.boot"]
	log.Printf("boot", "firmware %s, boot %q, %s since the kernel started", Firmware(), mode, Uptime())
	var err error
	if mode == "setup" {
		err = g.WindowsPE()
	} else {
		err = g.Installed()
	}
	if err == nil {
		return
	}
	var se *Error
	if !errors.As(err, &se) {
		se = &Error{Pass: "windowsPE", Message: "Windows installation encountered an unexpected error.", Details: []string{err.Error()}}
		if mode != "setup" {
			se.Pass = "boot"
			se.Message = "The computer restarted unexpectedly or encountered an unexpected error. Windows installation cannot proceed."
		}
	}
	log.SetupError(se)
}

func (g *Guest) pe(format string, args ...any) {
	g.Log.Printf("setup: windowsPE", format, args...)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
