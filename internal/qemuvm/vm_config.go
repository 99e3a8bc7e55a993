//go:generate go tool packer-sdc mapstructure-to-hcl2 -type VMConfig
//go:generate go tool packer-sdc struct-markdown

package qemuvm

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Disk interfaces accepted by `disk_interface`.
const (
	DiskVirtioBlk  = "virtio-blk"
	DiskVirtioSCSI = "virtio-scsi"
	DiskSATA       = "sata"
)

// Network devices accepted by `net_device`.
const (
	NetVirtio = "virtio-net"
	NetE1000  = "e1000"
)

// Networks accepted by `network`.
const (
	NetworkUser   = "user"
	NetworkBridge = "bridge"
)

// Accelerators accepted by `accelerator`.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// VMConfig describes the virtual hardware Windows is installed on: firmware,
// TPM, CPUs, memory, disk, network device and accelerator, the host port
// forwarded to the guest's WinRM port, and how long a shutdown may take.
type VMConfig struct {
	// Firmware of the VM: `uefi` (default, OVMF) or `bios` (SeaBIOS).
	Firmware string `mapstructure:"firmware" required:"false"`
	// Attach a TPM 2.0 emulated by `swtpm` (UEFI only). Defaults to `true`
	// with `firmware = "uefi"`. The TPM state is kept with the artifact, in
	// `tpm/` of the output directory.
	TPM *bool `mapstructure:"tpm" required:"false"`
	// Path of the OVMF code file. Defaults to the first x86_64 q35 UEFI
	// flash firmware listed by QEMU's descriptors in
	// `/usr/share/qemu/firmware/*.json`, else Debian's
	// `/usr/share/OVMF/OVMF_CODE_4M.fd`.
	EFIFirmwareCode string `mapstructure:"efi_firmware_code" required:"false"`
	// Path of the OVMF variable store template, copied into the output
	// directory as `efivars.fd` and kept with the artifact. Defaults to the
	// template that belongs to the chosen code file.
	EFIFirmwareVars string `mapstructure:"efi_firmware_vars" required:"false"`
	// QEMU machine type. Defaults to `q35`.
	MachineType string `mapstructure:"machine_type" required:"false"`
	// Number of virtual CPUs, 1 to 64. Defaults to `2`.
	CPUs int `mapstructure:"cpus" required:"false"`
	// Memory in MiB, 512 to 1048576. Defaults to `4096`.
	MemoryMB int `mapstructure:"memory" required:"false"`
	// Size of the system disk in MiB. Defaults to `65536`; the generated
	// partition layout needs at least 32886 MiB on UEFI and 32770 MiB on
	// BIOS.
	DiskSizeMB uint64 `mapstructure:"disk_size" required:"false"`
	// Bus of the system disk: `virtio-blk` (default; needs viostor from
	// `virtio_win_iso_url`), `virtio-scsi` (vioscsi) or `sata` (inbox
	// drivers).
	DiskInterface string `mapstructure:"disk_interface" required:"false"`
	// Network device: `virtio-net` (default; needs NetKVM) or `e1000`
	// (inbox driver).
	NetDevice string `mapstructure:"net_device" required:"false"`
	// `auto` (default), `kvm` or `tcg`. `auto` picks KVM only when
	// `/dev/kvm` opens, the CPU has the vmx or svm flag, and the host is not
	// running the `kvm_pvm` module (software nested virtualisation that
	// cannot run Windows); otherwise TCG. The build log says which.
	Accelerator string `mapstructure:"accelerator" required:"false"`
	// Give Windows the Hyper-V enlightenments (`hv-relaxed`, `hv-vapic`,
	// `hv-spinlocks=0x1fff`, `hv-vpindex`, `hv-runtime`, `hv-synic`,
	// `hv-time`, `hv-stimer`, `hv-frequencies`, `hv-reset`; on libvirt
	// `<features><hyperv>` and the `hypervclock` timer), as virt-install
	// and Proxmox do for Windows guests: without them Windows under KVM
	// runs slower and falls back to the HPET or RTC for its timers.
	// Defaults to on under KVM and off under TCG, which cannot provide
	// them. `false` leaves them off; `true` fails the build unless the VM
	// runs under KVM. The manifest lists the ones the VM ran with
	// (`hyperv_enlightenments`).
	HyperVEnlightenments *bool `mapstructure:"hyperv_enlightenments" required:"false"`
	// How the guest is networked: `user` (default; QEMU's user-mode
	// network, WinRM reached through a port forward on 127.0.0.1, the host
	// seen by the guest as 10.0.2.2) or `bridge` (the NIC joins the host
	// bridge named by `bridge` through `qemu-bridge-helper`; WinRM is
	// reached on the guest's own address). The user-mode network is never
	// started with `restrict=on`, which would cut the guest off from the
	// host's services the build exports in `WinbakeHostIP`.
	Network string `mapstructure:"network" required:"false"`
	// Host bridge the NIC joins with `network = "bridge"`, for example
	// `br0`. QEMU's setuid `qemu-bridge-helper` attaches the tap device and
	// refuses any bridge not allowed in `/etc/qemu/bridge.conf` (a line
	// `allow br0`). The bridge needs an IPv4 address on the host: it is
	// exported as `WinbakeHostIP` and `WinbakeHostBindIP`.
	Bridge string `mapstructure:"bridge" required:"false"`
	// Lowest host port tried for the WinRM forward (on 127.0.0.1).
	// Defaults to `2222`.
	HostPortMin int `mapstructure:"host_port_min" required:"false"`
	// Highest host port tried for the WinRM forward, exclusive. Defaults
	// to `4444`. Each port of the range is tried once, from a random one; a
	// range with no free port fails the build.
	HostPortMax int `mapstructure:"host_port_max" required:"false"`
	// How long to wait for Windows to power off after `shutdown /s /t 0`
	// before QEMU is killed (which the log reports). Defaults to `5m`.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout" required:"false"`
	// Serve the VM's screen over VNC, to watch Windows Setup or see a
	// dialog that stops it. QEMU takes the first free port from
	// `vnc_port_min` to `vnc_port_max` on `vnc_bind_address`, and the build
	// prints the address to point a VNC viewer at (e.g. `vncviewer
	// 127.0.0.1::5900`). The VNC server has no password: keep it on
	// 127.0.0.1 (the default) and reach it through an SSH tunnel from
	// elsewhere. Defaults to `false` (no display).
	VNC bool `mapstructure:"vnc" required:"false"`
	// Address the VNC server listens on. Defaults to `127.0.0.1`.
	VNCBindAddress string `mapstructure:"vnc_bind_address" required:"false"`
	// Lowest VNC port tried. Defaults to `5900`.
	VNCPortMin int `mapstructure:"vnc_port_min" required:"false"`
	// Highest VNC port tried. Defaults to `6000`.
	VNCPortMax int `mapstructure:"vnc_port_max" required:"false"`

	// given are the settings the template sets (SetGiven), so that a 0
	// set on purpose is refused instead of read as unset.
	given map[string]bool
}

// SetGiven records which settings the template sets: the keys Packer's
// decoder read (config.DecodeOpts.Metadata).
func (c *VMConfig) SetGiven(keys []string) {
	c.given = map[string]bool{}
	for _, k := range keys {
		c.given[k] = true
	}
}

// VNCDisplay is QEMU's -vnc value for the VNC settings, "" without VNC:
// display numbers count from port 5900, and `to=` lets QEMU take the
// first free one.
func (c *VMConfig) VNCDisplay() string {
	if !c.VNC {
		return ""
	}
	return fmt.Sprintf("%s:%d,to=%d", c.VNCBindAddress, c.VNCPortMin-5900, c.VNCPortMax-5900)
}

// TPMEnabled reports whether the VM gets a TPM (after Prepare).
func (c *VMConfig) TPMEnabled() bool { return c.TPM != nil && *c.TPM }

// Prepare fills in defaults and validates the VM settings. Every error
// names the HCL field and what is accepted.
func (c *VMConfig) Prepare(_ *interpolate.Context) []error {
	var errs []error
	switch c.Firmware {
	case "":
		c.Firmware = FirmwareUEFI
	case FirmwareUEFI, FirmwareBIOS:
	default:
		errs = append(errs, fmt.Errorf("firmware: %q is not supported; use %q or %q", c.Firmware, FirmwareUEFI, FirmwareBIOS))
	}
	if c.TPM == nil {
		on := c.Firmware == FirmwareUEFI
		c.TPM = &on
	} else if *c.TPM && c.Firmware == FirmwareBIOS {
		errs = append(errs, fmt.Errorf(`tpm: a TPM needs firmware = "uefi"; set tpm = false or firmware = "uefi"`))
	}
	if c.Firmware == FirmwareBIOS && (c.EFIFirmwareCode != "" || c.EFIFirmwareVars != "") {
		errs = append(errs, fmt.Errorf(`efi_firmware_code: set with firmware = "bios"; remove efi_firmware_code/efi_firmware_vars or use firmware = "uefi"`))
	}
	if (c.EFIFirmwareCode == "") != (c.EFIFirmwareVars == "") {
		errs = append(errs, fmt.Errorf("efi_firmware_vars: give both efi_firmware_code and efi_firmware_vars, or neither to find OVMF automatically"))
	}
	if c.MachineType == "" {
		c.MachineType = "q35"
	}
	if c.CPUs == 0 && !c.given["cpus"] {
		c.CPUs = 2
	} else if c.CPUs < 1 || c.CPUs > 64 {
		errs = append(errs, fmt.Errorf("cpus: %d is out of range; use 1 to 64, or leave cpus unset for 2", c.CPUs))
	}
	if c.MemoryMB == 0 && !c.given["memory"] {
		c.MemoryMB = 4096
	} else if c.MemoryMB < 512 || c.MemoryMB > 1048576 {
		errs = append(errs, fmt.Errorf("memory: %d MiB is out of range; use 512 to 1048576, or leave memory unset for 4096", c.MemoryMB))
	}
	if c.DiskSizeMB == 0 {
		if c.given["disk_size"] {
			errs = append(errs, fmt.Errorf("disk_size: 0 MiB; give the size of the system disk in MiB (at least 32886 on UEFI, 32770 on BIOS), or leave disk_size unset for 65536"))
		}
		c.DiskSizeMB = 65536
	}
	switch c.DiskInterface {
	case "":
		c.DiskInterface = DiskVirtioBlk
	case DiskVirtioBlk, DiskVirtioSCSI, DiskSATA:
	default:
		errs = append(errs, fmt.Errorf("disk_interface: %q is not supported; use %q, %q or %q", c.DiskInterface, DiskVirtioBlk, DiskVirtioSCSI, DiskSATA))
	}
	switch c.NetDevice {
	case "":
		c.NetDevice = NetVirtio
	case NetVirtio, NetE1000:
	default:
		errs = append(errs, fmt.Errorf("net_device: %q is not supported; use %q or %q", c.NetDevice, NetVirtio, NetE1000))
	}
	switch c.Accelerator {
	case "":
		c.Accelerator = AccelAuto
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		errs = append(errs, fmt.Errorf("accelerator: %q is not supported; use %q, %q or %q", c.Accelerator, AccelAuto, AccelKVM, AccelTCG))
	}
	if c.HyperVEnlightenments != nil && *c.HyperVEnlightenments && c.Accelerator == AccelTCG {
		errs = append(errs, fmt.Errorf(`hyperv_enlightenments: true needs KVM, but accelerator is "tcg"; QEMU provides the Hyper-V enlightenments only with KVM; remove hyperv_enlightenments or use accelerator = "kvm" or "auto"`))
	}
	switch c.Network {
	case "":
		c.Network = NetworkUser
	case NetworkUser, NetworkBridge:
	default:
		errs = append(errs, fmt.Errorf("network: %q is not supported; use %q or %q", c.Network, NetworkUser, NetworkBridge))
	}
	errs = append(errs, c.prepareVNC()...)
	if c.Network == NetworkBridge && c.Bridge == "" {
		errs = append(errs, fmt.Errorf(`bridge: required with network = "bridge"; name the host bridge, e.g. "br0"`))
	}
	if c.Network == NetworkUser && c.Bridge != "" {
		errs = append(errs, fmt.Errorf(`bridge: %q is set but network is "user"; set network = "bridge" or remove bridge`, c.Bridge))
	}
	if c.HostPortMin == 0 {
		c.HostPortMin = 2222
	}
	if c.HostPortMax == 0 {
		c.HostPortMax = 4444
	}
	if c.HostPortMin < 1 || c.HostPortMin > 65535 {
		errs = append(errs, fmt.Errorf("host_port_min: %d is not a port; use 1 to 65535", c.HostPortMin))
	} else if c.HostPortMax <= c.HostPortMin || c.HostPortMax > 65536 {
		errs = append(errs, fmt.Errorf("host_port_max: %d must be above host_port_min (%d) and at most 65536", c.HostPortMax, c.HostPortMin))
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Minute
	} else if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s is negative; use a duration such as \"5m\"", c.ShutdownTimeout))
	}
	return errs
}

func (c *VMConfig) prepareVNC() []error {
	if !c.VNC {
		if c.VNCBindAddress != "" || c.VNCPortMin != 0 || c.VNCPortMax != 0 {
			return []error{fmt.Errorf("vnc_bind_address, vnc_port_min, vnc_port_max: set without vnc = true; add vnc = true or remove them")}
		}
		return nil
	}
	var errs []error
	if c.VNCBindAddress == "" {
		c.VNCBindAddress = "127.0.0.1"
	} else if net.ParseIP(c.VNCBindAddress) == nil {
		errs = append(errs, fmt.Errorf("vnc_bind_address: %q is not an IP address; use e.g. 127.0.0.1", c.VNCBindAddress))
	}
	if c.VNCPortMin == 0 {
		c.VNCPortMin = 5900
	}
	if c.VNCPortMax == 0 {
		c.VNCPortMax = 6000
	}
	if c.VNCPortMin < 5900 || c.VNCPortMax > 65535 || c.VNCPortMin > c.VNCPortMax {
		errs = append(errs, fmt.Errorf("vnc_port_min, vnc_port_max: %d to %d is not a port range from 5900 up (QEMU numbers VNC displays from port 5900)", c.VNCPortMin, c.VNCPortMax))
	}
	return errs
}

// CheckFirmwareFiles checks that efi_firmware_code and efi_firmware_vars
// name files on this machine (for a local QEMU or libvirt).
func (c *VMConfig) CheckFirmwareFiles() []error {
	var errs []error
	for _, f := range []struct{ field, path string }{{"efi_firmware_code", c.EFIFirmwareCode}, {"efi_firmware_vars", c.EFIFirmwareVars}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil || !st.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s: %s is not a file on this machine; give the path of an OVMF %s file (e.g. /usr/share/OVMF/OVMF_%s_4M.fd), or leave efi_firmware_code and efi_firmware_vars unset to find OVMF automatically",
				f.field, f.path, strings.TrimPrefix(f.field, "efi_firmware_"), strings.ToUpper(strings.TrimPrefix(f.field, "efi_firmware_"))))
		}
	}
	return errs
}
