// Package unattend models the Windows Setup answer file (autounattend.xml)
// that winbake puts on the installation media.
//
// The answer file is built from typed Go structs and rendered with
// encoding/xml, so every value is escaped by the XML encoder and the output is
// always well-formed. Settings is the plain data the builders fill in; Render
// turns it into the default answer file, and RenderTemplate/ParseTemplate let
// a user supply their own text/template that receives the same Settings.
//
// The package knows nothing about Packer. Validation errors nevertheless name
// the HCL fields of the winbake builders (see the Field* constants) so that
// they can be shown to users unchanged.
package unattend

import "strings"

// Firmware selects the partition layout: MBR for BIOS, GPT for UEFI.
type Firmware string

const (
	// FirmwareBIOS boots from an MBR disk with a single active NTFS partition.
	FirmwareBIOS Firmware = "bios"
	// FirmwareUEFI boots from a GPT disk with EFI, MSR, optional recovery and
	// Windows partitions.
	FirmwareUEFI Firmware = "uefi"
)

// Processor architectures accepted in Settings.Architecture. They are the
// values of the processorArchitecture attribute of every component.
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
	ArchX86   = "x86"
)

// Defaults applied by Settings.WithDefaults.
const (
	DefaultLanguage       = "en-US"
	DefaultTimeZone       = "UTC"
	DefaultComputerName   = "*"
	DefaultUsername       = "Administrator"
	DefaultFullName       = "winbake"
	DefaultAutoLogonCount = 1
)

// DefaultVirtioDrives are the drive letters searched for the virtio-win
// drivers in Windows PE. The letter a CD-ROM gets in Windows PE depends on the
// order of the devices, so several candidates are listed.
var DefaultVirtioDrives = []string{"D", "E", "F", "G", "H"}

// DefaultVirtioDrivers are the virtio-win driver folders Windows PE needs to
// see the disk (viostor for virtio-blk, vioscsi for virtio-scsi) and the
// network card (NetKVM) during Setup.
var DefaultVirtioDrivers = []string{"viostor", "vioscsi", "NetKVM"}

// Settings is everything the default answer file depends on. The zero value
// of a string or slice field means "use the default" (see WithDefaults);
// booleans are taken literally.
type Settings struct {
	// Architecture is the processorArchitecture of every component: "amd64"
	// (default), "arm64" or "x86". It must match the installation media.
	Architecture string
	// Firmware selects the disk layout ("bios" or "uefi").
	Firmware Firmware

	// ImageName selects the image in install.wim/install.esd by
	// /IMAGE/NAME, e.g. "Windows Server 2022 SERVERDATACENTER".
	ImageName string
	// ProductKey is the key typed into Setup. Empty means no key element
	// (evaluation media need none).
	ProductKey string
	// FullName and Organization are the registered owner and organisation.
	// FullName defaults to DefaultFullName; Organization may be empty.
	FullName     string
	Organization string

	// UILanguage is the Setup and Windows display language (default en-US).
	// InputLocale, SystemLocale and UserLocale default to UILanguage.
	UILanguage   string
	InputLocale  string
	SystemLocale string
	UserLocale   string

	// TimeZone is a Windows time zone ID (default "UTC").
	TimeZone string
	// ComputerName is the NetBIOS name, or "*" (default) for a random one.
	ComputerName string

	// EnableRDP allows Remote Desktop connections and opens the firewall.
	EnableRDP bool
	// RDPRequireNLA requires Network Level Authentication (only with RDP).
	RDPRequireNLA bool
	// AllowICMP adds firewall rules that answer ICMP echo (ping).
	AllowICMP bool
	// BypassHardwareChecks writes the LabConfig keys that let Windows 11
	// Setup install without TPM 2.0, Secure Boot or 4 GB of RAM.
	BypassHardwareChecks bool

	// RecoveryPartitionMB is the size of a Windows RE partition placed
	// before the Windows partition (UEFI only). 0 means none.
	RecoveryPartitionMB int

	// VirtioFolder is the operating-system folder of the virtio-win media
	// ("2k16", "2k19", "2k22", "2k25", "w10", "w11", ...). Empty means no
	// driver paths are added (e.g. SATA disk and e1000 NIC).
	VirtioFolder string
	// VirtioArchFolder is the architecture folder of the virtio-win media
	// ("amd64", "ARM64", "x86"). Defaults from Architecture.
	VirtioArchFolder string
	// VirtioDrives are the drive letters that may hold the virtio-win media
	// in Windows PE (default D, E, F, G, H).
	VirtioDrives []string
	// VirtioDrivers are the driver folders to load (default viostor,
	// vioscsi, NetKVM).
	VirtioDrivers []string

	// Username is the build account (default Administrator). The built-in
	// Administrator gets AdministratorPassword; any other name becomes a
	// local account in the Administrators group.
	Username string
	// Password is the build account's password. Required.
	Password string
	// AutoLogonCount is how many automatic logons are allowed (default 1,
	// enough to run FirstLogonCommands).
	AutoLogonCount int

	// ExtraCommands run at first logon, in order, before WinRM is enabled.
	ExtraCommands []string

	// WinRM says how the first logon enables WinRM (HTTP by default).
	WinRM WinRMSettings
}

// WithDefaults returns a copy of s with every unset field given its default.
// Render, RenderTemplate and Validate call it themselves.
func (s Settings) WithDefaults() Settings {
	if s.Architecture == "" {
		s.Architecture = ArchAMD64
	}
	if s.UILanguage == "" {
		s.UILanguage = DefaultLanguage
	}
	if s.InputLocale == "" {
		s.InputLocale = s.UILanguage
	}
	if s.SystemLocale == "" {
		s.SystemLocale = s.UILanguage
	}
	if s.UserLocale == "" {
		s.UserLocale = s.UILanguage
	}
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	if s.ComputerName == "" {
		s.ComputerName = DefaultComputerName
	}
	if s.FullName == "" {
		s.FullName = DefaultFullName
	}
	if s.Username == "" {
		s.Username = DefaultUsername
	}
	if s.AutoLogonCount == 0 {
		s.AutoLogonCount = DefaultAutoLogonCount
	}
	if s.VirtioArchFolder == "" {
		s.VirtioArchFolder = virtioArchFolder(s.Architecture)
	}
	if len(s.VirtioDrives) == 0 {
		s.VirtioDrives = append([]string(nil), DefaultVirtioDrives...)
	} else {
		s.VirtioDrives = append([]string(nil), s.VirtioDrives...)
	}
	if len(s.VirtioDrivers) == 0 {
		s.VirtioDrivers = append([]string(nil), DefaultVirtioDrivers...)
	} else {
		s.VirtioDrivers = append([]string(nil), s.VirtioDrivers...)
	}
	s.ExtraCommands = append([]string(nil), s.ExtraCommands...)
	return s
}

// IsBuiltinAdministrator reports whether the build account is the built-in
// Administrator (compared case-insensitively, as Windows does).
func (s Settings) IsBuiltinAdministrator() bool {
	u := s.Username
	if u == "" {
		u = DefaultUsername
	}
	return strings.EqualFold(u, DefaultUsername)
}

// virtioArchFolder maps a processor architecture to the folder name used on
// the virtio-win media.
func virtioArchFolder(arch string) string {
	switch arch {
	case ArchARM64:
		return "ARM64"
	case ArchX86:
		return "x86"
	default:
		return "amd64"
	}
}
