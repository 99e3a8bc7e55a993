package sysprep

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/builder/qemu"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// Manifest is the manifest of a generalized image: the builder's manifest
// with what sysprep did.
type Manifest struct {
	qemu.Manifest
	// Generalized is true: sysprep /generalize /oobe ran and powered the
	// VM off.
	Generalized bool `json:"generalized"`
	// Source is the golden image the generalized one was made from.
	Source struct {
		Disk   string `json:"disk"`
		SHA256 string `json:"sha256"`
	} `json:"source"`
	// RemovedAppxPackages are the per-user Appx packages removed before
	// sysprep, by full name.
	RemovedAppxPackages []string `json:"removed_appx_packages"`
	// CloudbaseInit is true when cloudbase-init was installed.
	CloudbaseInit bool `json:"cloudbase_init"`
	// ImageWinRM is the WinRM the generalized image offers; the embedded
	// `winrm` stays the build's, which was removed.
	ImageWinRM *winrmsec.ImageWinRM `json:"image_winrm,omitempty"`
}

// Image is an image a winbake manifest describes: a builder's golden image
// or a generalized one.
type Image struct {
	Dir          string // its directory
	ManifestPath string
	Name         string // manifest file name without .json
	Manifest     Manifest
	DiskPath     string
	EFIVarsPath  string // "" for BIOS
	TPMStateDir  string // "" without a TPM
}

// BuildWinRM is how the image's build reached WinRM: its manifest's
// record, or for an image from before winbake recorded it, HTTP with
// Basic on 5985 (winrmsec.LegacyBuildWinRM).
func (in *Image) BuildWinRM() winrmsec.BuildWinRM {
	if in.Manifest.WinRM == nil {
		return winrmsec.LegacyBuildWinRM
	}
	return *in.Manifest.WinRM
}

// inputImage is the golden image the input artifact describes.
type inputImage = Image

// ManifestOf returns the path of the winbake manifest an artifact carries:
// its "manifest" state, else its one <name>.json file; "" when it has none.
func ManifestOf(a packersdk.Artifact) string {
	if path, _ := a.State("manifest").(string); path != "" {
		return path
	}
	var found []string
	for _, f := range a.Files() {
		if strings.HasSuffix(f, ".json") {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// OpenImage reads the manifest at path and checks that it names a qcow2
// disk and that the disk, UEFI variables and TPM state it names are there.
func OpenImage(path string) (*Image, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the input manifest: %w", err)
	}
	in := &Image{Dir: filepath.Dir(path), ManifestPath: path, Name: strings.TrimSuffix(filepath.Base(path), ".json")}
	if err := json.Unmarshal(b, &in.Manifest); err != nil {
		return nil, fmt.Errorf("input manifest %s: %w", path, err)
	}
	m := &in.Manifest
	if m.WinRM != nil {
		if err := m.WinRM.Check(); err != nil {
			return nil, fmt.Errorf("input manifest %s: %w", path, err)
		}
	}
	if m.Disk == "" || m.Format != "qcow2" {
		return nil, fmt.Errorf("input manifest %s names no qcow2 disk (disk %q, format %q)", path, m.Disk, m.Format)
	}
	in.DiskPath = filepath.Join(in.Dir, m.Disk)
	if _, err := os.Stat(in.DiskPath); err != nil {
		return nil, fmt.Errorf("input disk: %w", err)
	}
	switch m.Firmware {
	case wbcommon.FirmwareUEFI:
		if m.EFIVars == "" {
			return nil, fmt.Errorf("input manifest %s: a UEFI image without efivars", path)
		}
		in.EFIVarsPath = filepath.Join(in.Dir, m.EFIVars)
		if _, err := os.Stat(in.EFIVarsPath); err != nil {
			return nil, fmt.Errorf("input UEFI variables: %w", err)
		}
	case wbcommon.FirmwareBIOS:
	default:
		return nil, fmt.Errorf("input manifest %s: firmware %q is neither uefi nor bios", path, m.Firmware)
	}
	if m.TPM {
		in.TPMStateDir = filepath.Join(in.Dir, m.TPMState)
		if fi, err := os.Stat(in.TPMStateDir); err != nil || !fi.IsDir() || m.TPMState == "" {
			return nil, fmt.Errorf("input TPM state %q: the image was built with a TPM whose state is missing (%v)", m.TPMState, err)
		}
	}
	return in, nil
}

// readInput finds the manifest of a winbake builder artifact and checks
// that the files it names are there and that the image is not generalized
// yet.
func readInput(a packersdk.Artifact) (*inputImage, error) {
	if a == nil {
		return nil, errors.New("no input artifact: winbake-sysprep follows a winbake-qemu or winbake-libvirt build")
	}
	path := ManifestOf(a)
	if path == "" {
		return nil, fmt.Errorf("the input artifact (%s, builder %s) has no winbake manifest (<vm_name>.json): winbake-sysprep takes the artifact of winbake-qemu or winbake-libvirt", a.Id(), a.BuilderId())
	}
	in, err := OpenImage(path)
	if err != nil {
		return nil, err
	}
	if in.Manifest.Generalized {
		return nil, fmt.Errorf("the input image %s is generalized already: sysprep runs on the golden image a builder made, and only a limited number of times per installation", in.ManifestPath)
	}
	return in, nil
}

// Firmware returns the UEFI firmware to boot the image with (zero for a
// BIOS image): override when set (a post-processor's efi_firmware_code),
// else the firmware the build booted while it exists on this host (the
// manifest's efi_firmware_code), else what host offers. A Secure Boot
// image keeps Secure Boot firmware (with SMM); its variables hold the keys.
func (in *Image) Firmware(override string, host wbcommon.HostPaths) (wbcommon.OVMF, error) {
	m := &in.Manifest
	if m.Firmware != wbcommon.FirmwareUEFI {
		return wbcommon.OVMF{}, nil
	}
	code := override
	if code == "" && m.EFIFirmwareCode != "" && fileExists(m.EFIFirmwareCode) {
		code = m.EFIFirmwareCode
	}
	switch {
	case code != "":
		return wbcommon.OVMF{Code: code, CodeFormat: imageFormat(code), SecureBoot: m.SecureBoot}, nil
	case m.SecureBoot:
		return host.FindSecureBootOVMF()
	default:
		return host.FindOVMF()
	}
}
