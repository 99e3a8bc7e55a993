package image

import (
	"github.com/winbake/packer-plugin-winbake/internal/efivars"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// Firmware values of a manifest's `firmware`, the same as the builders'
// `firmware` setting.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// Manifest is the winbake manifest of a builder's golden image, written
// as <vm_name>.json next to the disk; post-processors read it to boot and
// describe the image.
type Manifest struct {
	Disk     string `json:"disk"`
	Format   string `json:"format"`
	SHA256   string `json:"sha256"`
	Firmware string `json:"firmware"`
	EFIVars  string `json:"efivars,omitempty"`
	// EFIFirmwareCode is the OVMF code file the build booted, a path on
	// the build host; post-processors boot the image with it while it
	// exists.
	EFIFirmwareCode string `json:"efi_firmware_code,omitempty"`
	// SecureBootCertificates are the X.509 certificates of the Secure
	// Boot databases (PK, KEK, db, dbx) in EFIVars, as the image left
	// them: whether the firmware state holds Microsoft's 2023 CAs. No
	// Glance or Nova image property carries them (a Nova instance gets
	// its variables from the compute host's firmware template).
	SecureBootCertificates *efivars.SecureBootCertificates `json:"secure_boot_certificates,omitempty"`
	SecureBoot             bool                            `json:"secure_boot"`
	TPM                    bool                            `json:"tpm"`
	TPMState               string                          `json:"tpm_state,omitempty"`
	Machine                string                          `json:"machine"`
	DiskInterface          string                          `json:"disk_interface"`
	NetDevice              string                          `json:"net_device"`
	Accelerator            string                          `json:"accelerator"`
	// HyperVEnlightenments are the Hyper-V enlightenments (QEMU CPU
	// flags, e.g. "hv-relaxed") the VM ran with: empty under TCG or with
	// hyperv_enlightenments = false.
	HyperVEnlightenments []string `json:"hyperv_enlightenments"`
	// SourceImage is the disk the build started from (source_image); the
	// artifact's disk does not depend on it.
	SourceImage string `json:"source_image,omitempty"`
	// ISOChecksum is the install ISO's checksum as verified ("sha256:…"),
	// carried on from the source manifest by a source_image build.
	ISOChecksum string `json:"iso_checksum,omitempty"`
	// AdminUser is the administrator account of the image: the build
	// account (winrm_username, by default the built-in Administrator).
	// winbake-sysprep replaces it with cloudbase-init's username when it
	// installs cloudbase-init. Never a password.
	AdminUser string `json:"admin_user,omitempty"`
	// QemuGuestAgent says whether the QEMU guest agent service (QEMU-GA)
	// is installed in the image, as the guest answered at the end of the
	// build; absent without a communicator.
	QemuGuestAgent *bool `json:"qemu_guest_agent,omitempty"`
	// Updates are the packages of the winbake-updates record in the
	// image; absent when the image has none.
	Updates []ManifestUpdate `json:"updates,omitempty"`
	// WinRM is how the build reached WinRM and what it added for it
	// (listener, certificate, firewall rule), which winbake-sysprep removes.
	WinRM   *winrmsec.BuildWinRM `json:"winrm,omitempty"`
	Windows struct {
		ImageName        string `json:"image_name"`
		EditionID        string `json:"edition_id"`
		InstallationType string `json:"installation_type"`
		Version          string `json:"version"`
		Arch             string `json:"arch"`
	} `json:"windows"`
}

// ManifestUpdate is one update package in the manifest's `updates` list,
// from the record winbake-updates leaves in the image.
type ManifestUpdate struct {
	// KB is the package's KB number ("KB5044281"), "" when unknown.
	KB string `json:"kb,omitempty"`
	// File is the package's file name.
	File string `json:"file"`
	// Result is winbake-updates' result: installed, already_installed,
	// not_applicable, failed, deferred or pending.
	Result string `json:"result"`
}

// GeneralizedManifest is the manifest of a generalized image: the
// builder's manifest with what winbake-sysprep did.
type GeneralizedManifest struct {
	Manifest
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
