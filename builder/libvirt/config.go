//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool packer-sdc struct-markdown

package libvirt

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/mitchellh/mapstructure"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-libvirt"

// Guest address sources accepted by `address_source`.
const (
	AddressLease = "lease"
	AddressARP   = "arp"
	AddressAgent = "agent"
)

// Config holds the settings of the winbake-libvirt builder: the install
// ISO, the answer file (UnattendConfig, MediaConfig), the virtual hardware
// (VMConfig), WinRM, and where and how the domain runs on libvirt.
type Config struct {
	common.PackerConfig     `mapstructure:",squash"`
	commonsteps.ISOConfig   `mapstructure:",squash"`
	wbcommon.UnattendConfig `mapstructure:",squash"`
	wbcommon.MediaConfig    `mapstructure:",squash"`
	qemuvm.VMConfig         `mapstructure:",squash"`
	Comm                    communicator.Config `mapstructure:",squash"`

	// libvirt connection URI, as the virsh tools take it:
	// `qemu:///system` (default, the local daemon's unix socket;
	// `?socket=/path` picks another socket), `qemu+tcp://virthost/system`,
	// `qemu+tls://virthost/system` (`?pkipath=`, `?no_verify=1`),
	// `qemu+ssh://user@virthost/system` (`?keyfile=`, `?no_verify=1`;
	// host keys from `~/.ssh/known_hosts`) or `qemu+libssh://...`
	// (`?keyfile=`, `?known_hosts=`, `?known_hosts_verify=`). The builder
	// speaks libvirt's RPC protocol itself, so neither virsh nor the
	// libvirt client library is needed; over SSH it opens a channel to the
	// daemon's unix socket (`?socket=` when not the default), which the SSH
	// server grants when local forwarding is allowed (`AllowTcpForwarding`
	// `yes` or `local`, OpenSSH's default).
	LibvirtURI string `mapstructure:"libvirt_uri" required:"false"`
	// Storage pool holding the uploaded media (install ISO, virtio-win ISO,
	// answer-file CD or floppy) and the qcow2 system disk. Defaults to
	// `default`. The pool must exist and be active; media are uploaded with
	// the libvirt protocol, so the pool may be on a remote host.
	Pool string `mapstructure:"pool" required:"false"`
	// Keep the finished disk in `pool` as volume `<vm_name>.qcow2` instead
	// of downloading it into `output_directory` and deleting it. The
	// manifest is still written to `output_directory`; its `disk` names the
	// volume and its `sha256` is empty. Defaults to `false`.
	KeepInPool bool `mapstructure:"keep_in_pool" required:"false"`
	// libvirt network the NIC joins instead of `network`, for example
	// `default`. Leave `network` unset when using it. The guest's address is
	// found with `address_source` and WinRM connects to it directly, so the
	// Packer host must reach that network; the network's own address on the
	// hypervisor is exported as `WinbakeHostIP` and `WinbakeHostBindIP`.
	// Without it, `network = "user"` (default) puts the guest on QEMU's
	// user-mode network with WinRM forwarded from `forward_address` on the
	// hypervisor (passed through `<qemu:commandline>`, since this libvirt
	// generation ignores `<portForward>` on user interfaces; libvirt reports
	// the domain as tainted by `custom-argv`), and `network = "bridge"` with
	// `bridge` joins a host bridge on the hypervisor.
	LibvirtNetwork string `mapstructure:"libvirt_network" required:"false"`
	// How the guest's address is found with `libvirt_network` or
	// `network = "bridge"`: `lease` (default with `libvirt_network`; the
	// network's DHCP leases), `arp` (default with a bridge; the
	// hypervisor's ARP table, read from /proc/net/arp by winbake itself on a
	// local hypervisor whose libvirt fails to read it over netlink) or
	// `agent` (the QEMU guest agent, which a
	// Windows install does not have unless your commands set it up).
	AddressSource string `mapstructure:"address_source" required:"false"`
	// Address on the hypervisor the WinRM forward listens on with
	// `network = "user"`. Defaults to `127.0.0.1` for a local URI (unix
	// socket or loopback host); for a remote hypervisor it must be set to
	// an address of the hypervisor the Packer host reaches, or `0.0.0.0`
	// (WinRM is then exposed there for the duration of the build, and
	// reached at the URI's host).
	ForwardAddress string `mapstructure:"forward_address" required:"false"`
	// With `firmware = "uefi"`, let libvirt pick Secure Boot firmware with
	// Microsoft's keys enrolled (`<firmware>` features `secure-boot` and
	// `enrolled-keys`, SMM on). Needed for Windows 11; Windows Server
	// installs either way. The install media must then boot through a
	// loader signed for the enrolled keys: Windows media are signed by
	// Microsoft; customized media must keep Microsoft's signed boot files
	// or be signed with a key in the enrolled `db`. Recorded in the
	// manifest as `secure_boot`. Defaults to `false`.
	SecureBoot bool `mapstructure:"secure_boot" required:"false"`
	// Keep the golden image (the disk, manifest, UEFI variables, TPM state
	// and serial log in `output_directory`) when Packer discards this
	// builder's artifact. Packer discards it after the post-processors ran
	// when none of them kept it (`keep_input_artifact`), and also when the
	// first post-processor of a chain fails, whatever its
	// `keep_input_artifact` says: a full disk while compressing would
	// otherwise take hours of Windows Setup and updates with it. The
	// golden image is what next month's build starts from
	// (`source_image`). Set to `false` to let Packer delete it then: the
	// files the build wrote go, and `output_directory` too once empty.
	// Defaults to `true`.
	KeepGoldenImage *bool `mapstructure:"keep_golden_image" required:"false"`
	// Name of the libvirt domain and of the disk file (`<vm_name>.qcow2`)
	// and manifest (`<vm_name>.json`). Defaults to `packer-<build name>`.
	// A domain or volume of that name must not exist yet.
	VMName string `mapstructure:"vm_name" required:"false"`
	// Directory that receives the disk and the manifest. Defaults to
	// `output-<build name>`; it must not exist unless `-force` is given.
	OutputDir string `mapstructure:"output_directory" required:"false"`
	// Time to wait after the domain starts before typing `boot_command`.
	// Defaults to `3s` for UEFI and `0s` for BIOS.
	BootWait time.Duration `mapstructure:"boot_wait" required:"false"`
	// Keys typed through libvirt's send-key after `boot_wait`, in the
	// syntax of winbake-qemu's `boot_command`. Defaults, with
	// `firmware = "uefi"`, to pressing space four times a second apart,
	// which answers "Press any key to boot from CD or DVD". Set `[]` to type
	// nothing.
	BootCommand []string `mapstructure:"boot_command" required:"false"`

	bootKeys    []qemuvm.BootKey
	bootKeysTCG []qemuvm.BootKey
	uri         *url.URL
	ctx         interpolate.Context
}

// Prepare decodes raws into c, fills in defaults and validates the result.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	var md mapstructure.Metadata
	err := config.Decode(c, &config.DecodeOpts{
		Metadata:           &md,
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: []string{"boot_command"}},
	}, raws...)
	if err != nil {
		return nil, err
	}
	bootCommandSet := c.BootCommand != nil
	networkSet := c.Network != ""

	var errs *packersdk.MultiError
	add := func(es ...error) {
		for _, e := range es {
			if e != nil {
				errs = packersdk.MultiErrorAppend(errs, e)
			}
		}
	}

	c.SetGiven(md.Keys)
	warnings, isoErrs := wbcommon.PrepareISO(&c.ISOConfig, &c.ctx)
	add(isoErrs...)
	if c.VNCPortMin != 0 || c.VNCPortMax != 0 {
		add(fmt.Errorf("vnc_port_min, vnc_port_max: libvirt picks the VNC port itself, from remote_display_port_min/max of the hypervisor's qemu.conf; remove them"))
	}
	add(c.VMConfig.Prepare(&c.ctx)...)
	add(c.MediaConfig.Prepare(&c.ctx, c.Firmware)...)
	add(c.UnattendConfig.Prepare(&c.ctx, c.Firmware, c.DiskSizeMB)...)
	warnings = append(warnings, wbcommon.DriverWarnings(&c.VMConfig, &c.MediaConfig)...)
	if c.Comm.Type == "" {
		c.Comm.Type = "winrm"
	}
	add(c.UnattendConfig.PrepareCredentials(&c.Comm)...)
	switch c.Comm.Type {
	case "winrm", "none":
	default:
		add(fmt.Errorf(`communicator: %q is not supported; use "winrm" (default) or "none"`, c.Comm.Type))
	}

	if c.LibvirtURI == "" {
		c.LibvirtURI = "qemu:///system"
	}
	if u, err := parseURI(c.LibvirtURI); err != nil {
		add(err)
	} else {
		c.uri = u
	}
	if c.Pool == "" {
		c.Pool = "default"
	}
	if c.uri != nil && isLocalURI(c.uri) {
		// On a remote hypervisor the firmware paths are the
		// hypervisor's, which only libvirt can check.
		add(c.CheckFirmwareFiles()...)
	}
	switch c.AddressSource {
	case "":
		c.AddressSource = AddressARP
		if c.LibvirtNetwork != "" {
			c.AddressSource = AddressLease
		}
	case AddressLease, AddressARP, AddressAgent:
	default:
		add(fmt.Errorf("address_source: %q is not supported; use %q, %q or %q", c.AddressSource, AddressLease, AddressARP, AddressAgent))
	}
	if c.LibvirtNetwork != "" && networkSet {
		add(fmt.Errorf("libvirt_network: %q is set together with network = %q; use one of them", c.LibvirtNetwork, c.Network))
	}
	if c.usesForward() {
		if c.ForwardAddress == "" {
			if c.uri != nil && !isLocalURI(c.uri) {
				add(fmt.Errorf(`forward_address: required with network = "user" on the remote hypervisor %s; give an address of the hypervisor the Packer host reaches (or 0.0.0.0), or put the guest on a libvirt_network`, c.uri.Hostname()))
			}
			c.ForwardAddress = "127.0.0.1"
		} else if net.ParseIP(c.ForwardAddress) == nil {
			add(fmt.Errorf("forward_address: %q is not an IP address; give an address of the hypervisor such as 127.0.0.1 or 192.0.2.10", c.ForwardAddress))
		}
	} else if c.ForwardAddress != "" {
		add(fmt.Errorf(`forward_address: only used with network = "user"; remove it`))
	}
	// WinRM may speak HTTP only through a forward on this host's loopback.
	add(c.PrepareWinRMTransport(&c.Comm, c.reachedThroughLoopback())...)
	add(c.Comm.Prepare(&c.ctx)...)
	if c.SecureBoot && c.Firmware != qemuvm.FirmwareUEFI {
		add(fmt.Errorf(`secure_boot: needs firmware = "uefi"; set secure_boot = false or firmware = "uefi"`))
	}
	if c.SecureBoot && c.EFIFirmwareCode != "" {
		add(fmt.Errorf("secure_boot: libvirt picks the Secure Boot firmware itself; remove efi_firmware_code/efi_firmware_vars or secure_boot"))
	}
	if c.MachineType != "q35" && !strings.HasPrefix(c.MachineType, "pc-q35") && c.Firmware == qemuvm.FirmwareUEFI {
		add(fmt.Errorf(`machine_type: %q with firmware = "uefi"; libvirt's UEFI firmware needs a q35 machine ("q35" or "pc-q35-*")`, c.MachineType))
	}

	if c.OutputDir == "" {
		c.OutputDir = "output-" + c.PackerBuildName
	}
	if c.VMName == "" {
		c.VMName = "packer-" + c.PackerBuildName
	}
	if c.KeepGoldenImage == nil {
		keep := true
		c.KeepGoldenImage = &keep
	}
	if strings.ContainsAny(c.VMName, "/\\ ") {
		add(fmt.Errorf("vm_name: %q names a libvirt domain and volumes; use letters, digits, '-', '_' and '.'", c.VMName))
	}
	if !bootCommandSet && c.Firmware == qemuvm.FirmwareUEFI {
		c.BootCommand = qemuvm.DefaultUEFIBootCommand
		c.bootKeysTCG, _ = qemuvm.ParseBootCommand(qemuvm.DefaultUEFIBootCommandTCG)
		if c.BootWait == 0 {
			c.BootWait = 3 * time.Second
		}
	}
	if c.BootWait < 0 {
		add(fmt.Errorf("boot_wait: %s is negative; use a duration such as \"3s\"", c.BootWait))
	}
	keys, err := qemuvm.ParseBootCommand(c.BootCommand)
	if err != nil {
		add(err)
	}
	for _, k := range keys {
		for _, q := range k.QCodes {
			if _, ok := linuxKeycodes[q]; !ok {
				add(fmt.Errorf("boot_command: key %q cannot be sent through libvirt", q))
			}
		}
	}
	c.bootKeys = keys
	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// reachedThroughLoopback reports whether WinRM is reached through QEMU's
// forward on this host's 127.0.0.1: user networking on a local hypervisor
// with a loopback forward_address (after Prepare's defaults).
func (c *Config) reachedThroughLoopback() bool {
	return c.usesForward() && c.uri != nil && isLocalURI(c.uri) && c.Comm.WinRMHost == "" && wbcommon.IsLoopbackHost(c.ForwardAddress)
}

// usesForward reports whether the guest is on QEMU's user-mode network,
// reached through a port forward (after Prepare).
func (c *Config) usesForward() bool {
	return c.LibvirtNetwork == "" && c.Network == qemuvm.NetworkUser
}

// parseURI checks libvirt_uri: a URL whose scheme is a libvirt driver with
// an optional transport go-libvirt can dial.
func parseURI(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("libvirt_uri: %q is not a URI: %v; use for example qemu:///system or qemu+ssh://user@host/system", s, err)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver != "qemu" {
		return nil, fmt.Errorf("libvirt_uri: %q uses driver %q; winbake-libvirt needs the qemu driver (qemu:///system, qemu+tcp://host/system, ...)", s, driver)
	}
	switch transport {
	case "", "unix", "tcp", "tls", "ssh", "libssh", "libssh2":
	default:
		return nil, fmt.Errorf("libvirt_uri: transport %q in %q is not supported; use unix, tcp, tls, ssh or libssh", transport, s)
	}
	if (transport == "tcp" || transport == "tls" || strings.Contains(transport, "ssh")) && u.Hostname() == "" {
		return nil, fmt.Errorf("libvirt_uri: %q names no host; use for example %s://virthost/system", s, u.Scheme)
	}
	if u.Path != "/system" && u.Path != "/session" {
		return nil, fmt.Errorf("libvirt_uri: %q has path %q; use /system (or /session)", s, u.Path)
	}
	return u, nil
}

// isLocalURI reports whether the hypervisor is this machine: a unix
// socket or a loopback host.
func isLocalURI(u *url.URL) bool {
	h := u.Hostname()
	if h == "" || h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
