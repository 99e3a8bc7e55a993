package libvirt

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// DomainSpec is everything the domain XML is made from: the VM settings
// and the volumes and ports earlier steps created.
type DomainSpec struct {
	Name string
	// Type is the libvirt domain type: "qemu" (TCG) or "kvm".
	Type string
	// HyperV gives a "kvm" domain the Hyper-V enlightenments.
	HyperV   bool
	Machine  string
	CPUs     int
	MemoryMB int

	Firmware   string // "bios" or "uefi"
	SecureBoot bool
	// LoaderCode and LoaderVars name explicit UEFI firmware files on the
	// hypervisor; empty lets libvirt pick them.
	LoaderCode, LoaderVars string
	LoaderFormat           string
	TPM                    bool

	Pool         string
	InstallISO   string // volume names in Pool
	AnswerCD     string
	AnswerFloppy string
	ExtraCDs     []string
	Disk         string

	DiskInterface string
	NetDevice     string
	MAC           string

	// NetworkMode is NetUser (QEMU's user-mode network, WinRM forwarded
	// from ForwardAddress:HostPort), NetBridge (host bridge Bridge) or
	// NetLibvirt (libvirt network Network).
	NetworkMode    string
	ForwardAddress string
	HostPort       int
	GuestPort      int
	Bridge         string
	Network        string

	// SerialLog is the file on the hypervisor the serial console is
	// logged to.
	SerialLog string
	// VNCListen is the address of a VNC display; "" for none.
	VNCListen string
}

// Network modes of a DomainSpec.
const (
	NetUser    = "user"
	NetBridge  = "bridge"
	NetLibvirt = "network"
)

// GuestAgentChannel is the virtio-serial port name qemu-ga listens on.
const GuestAgentChannel = "org.qemu.guest_agent.0"

// userNICSlot is the PCI slot of the user-mode NIC.
const userNICSlot = 0x10

// qemuNetdevID is the id of the user-mode netdev passed on QEMU's command
// line.
const qemuNetdevID = "winbake0"

// Domain builds the libvirt domain for spec.
func (s DomainSpec) Domain() (*libvirtxml.Domain, error) {
	if s.Disk == "" || s.Pool == "" {
		return nil, fmt.Errorf("the domain needs a system disk volume and a pool")
	}
	d := &libvirtxml.Domain{
		Type:        s.Type,
		Name:        s.Name,
		Description: "Windows install by winbake-libvirt; removed when the build ends",
		Memory:      &libvirtxml.DomainMemory{Value: uint(s.MemoryMB), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(s.CPUs)},
		OnPoweroff:  "destroy",
		OnReboot:    "restart",
		OnCrash:     "destroy",
		OS:          &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: s.Machine, Type: "hvm"}},
		Features:    &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Clock:       &libvirtxml.DomainClock{Offset: "localtime"},
		Devices:     &libvirtxml.DomainDeviceList{MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"}},
	}
	if s.Type == "kvm" {
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	} else {
		d.CPU = &libvirtxml.DomainCPU{Mode: "maximum"}
	}
	switch {
	case s.HyperV && s.Type == "kvm":
		addHyperV(d)
	case s.HyperV:
		return nil, fmt.Errorf("hyperv_enlightenments: the Hyper-V enlightenments need a kvm domain, not %q", s.Type)
	}

	if s.Firmware == qemuvm.FirmwareUEFI {
		switch {
		case s.LoaderCode != "":
			d.OS.Loader = &libvirtxml.DomainLoader{Path: s.LoaderCode, Readonly: "yes", Type: "pflash", Format: s.LoaderFormat}
			d.OS.NVRam = &libvirtxml.DomainNVRam{Template: s.LoaderVars}
		case s.SecureBoot:
			d.OS.Firmware = "efi"
			d.OS.FirmwareInfo = &libvirtxml.DomainOSFirmwareInfo{Features: []libvirtxml.DomainOSFirmwareFeature{
				{Enabled: "yes", Name: "secure-boot"}, {Enabled: "yes", Name: "enrolled-keys"},
			}}
			d.Features.SMM = &libvirtxml.DomainFeatureSMM{State: "on"}
		default:
			d.OS.Firmware = "efi"
			d.OS.FirmwareInfo = &libvirtxml.DomainOSFirmwareInfo{Features: []libvirtxml.DomainOSFirmwareFeature{
				{Enabled: "no", Name: "secure-boot"},
			}}
		}
	}
	if s.TPM {
		d.Devices.TPMs = []libvirtxml.DomainTPM{{
			Model:   "tpm-crb",
			Backend: &libvirtxml.DomainTPMBackend{Emulator: &libvirtxml.DomainTPMBackendEmulator{Version: "2.0"}},
		}}
	}

	if err := s.addDisks(d); err != nil {
		return nil, err
	}
	s.addNetwork(d)

	// The QEMU guest agent's channel, as virt-install adds it: libvirt
	// reaches qemu-ga through it (address_source = "agent"); a guest
	// without the agent only sees an idle virtio-serial port.
	d.Devices.Channels = []libvirtxml.DomainChannel{{
		Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
		Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: GuestAgentChannel}},
	}}

	if s.SerialLog != "" {
		port := uint(0)
		d.Devices.Serials = []libvirtxml.DomainSerial{{
			Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
			Target: &libvirtxml.DomainSerialTarget{Port: &port},
			Log:    &libvirtxml.DomainChardevLog{File: s.SerialLog, Append: "off"},
		}}
	}
	if s.VNCListen != "" {
		d.Devices.Graphics = []libvirtxml.DomainGraphic{{VNC: &libvirtxml.DomainGraphicVNC{
			AutoPort:  "yes",
			Listeners: []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: s.VNCListen}}},
		}}}
		d.Devices.Videos = []libvirtxml.DomainVideo{{Model: libvirtxml.DomainVideoModel{Type: "vga"}}}
	}
	return d, nil
}

// addDisks attaches the system disk (boot order 1; empty until Setup has
// written it, so the firmware falls through to the install CD, order 2),
// the CDs on SATA and the answer floppy.
func (s DomainSpec) addDisks(d *libvirtxml.Domain) error {
	sata := 0
	nextSATA := func() string { dev := fmt.Sprintf("sd%c", 'a'+sata); sata++; return dev }
	volume := func(name string) *libvirtxml.DomainDiskSource {
		return &libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: s.Pool, Volume: name}}
	}

	disk := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Discard: "unmap", DetectZeros: "unmap"},
		Source: volume(s.Disk),
		Boot:   &libvirtxml.DomainDeviceBoot{Order: 1},
	}
	switch s.DiskInterface {
	case qemuvm.DiskVirtioBlk:
		disk.Target = &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"}
	case qemuvm.DiskVirtioSCSI:
		idx := uint(0)
		d.Devices.Controllers = append(d.Devices.Controllers, libvirtxml.DomainController{Type: "scsi", Index: &idx, Model: "virtio-scsi"})
		disk.Target = &libvirtxml.DomainDiskTarget{Dev: nextSATA(), Bus: "scsi"}
	case qemuvm.DiskSATA:
		disk.Target = &libvirtxml.DomainDiskTarget{Dev: nextSATA(), Bus: "sata"}
	default:
		return fmt.Errorf("disk_interface: %q is not supported by winbake-libvirt", s.DiskInterface)
	}
	addDiscardGranularity(d, &disk, s.DiskInterface)
	d.Devices.Disks = append(d.Devices.Disks, disk)

	cd := func(name string, boot uint) {
		c := libvirtxml.DomainDisk{
			Device:   "cdrom",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   volume(name),
			Target:   &libvirtxml.DomainDiskTarget{Dev: nextSATA(), Bus: "sata"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		}
		if boot > 0 {
			c.Boot = &libvirtxml.DomainDeviceBoot{Order: boot}
		}
		d.Devices.Disks = append(d.Devices.Disks, c)
	}
	if s.InstallISO != "" {
		cd(s.InstallISO, 2)
	}
	if s.AnswerCD != "" {
		cd(s.AnswerCD, 0)
	}
	for _, extra := range s.ExtraCDs {
		cd(extra, 0)
	}
	if s.AnswerFloppy != "" {
		// Read-only: a floppy image another domain has open would fail
		// QEMU's write lock otherwise.
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device:   "floppy",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   volume(s.AnswerFloppy),
			Target:   &libvirtxml.DomainDiskTarget{Dev: "fda", Bus: "fdc"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		})
	}
	return nil
}

// addNetwork adds the NIC: on a libvirt network as an <interface>, or on
// QEMU's user-mode network through <qemu:commandline>, the one way this
// libvirt generation forwards a host port to such a guest (passt is not
// available and <portForward> is ignored on user interfaces).
func (s DomainSpec) addNetwork(d *libvirtxml.Domain) {
	model := "virtio"
	qemuDevice := "virtio-net-pci"
	if s.NetDevice == qemuvm.NetE1000 {
		model, qemuDevice = "e1000", "e1000"
	}
	if s.NetworkMode != NetUser {
		iface := libvirtxml.DomainInterface{Model: &libvirtxml.DomainInterfaceModel{Type: model}}
		if s.NetworkMode == NetBridge {
			iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: s.Bridge}}
		} else {
			iface.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.Network}}
		}
		if s.MAC != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: s.MAC}
		}
		d.Devices.Interfaces = []libvirtxml.DomainInterface{iface}
		return
	}
	netdev := fmt.Sprintf("user,id=%s,hostfwd=tcp:%s:%d-:%d", qemuNetdevID, s.ForwardAddress, s.HostPort, s.GuestPort)
	// libvirt does not know this device: it must sit on a slot libvirt's
	// own address assignment (which starts at slot 1) leaves free.
	bus := "pcie.0"
	if !strings.Contains(s.Machine, "q35") {
		bus = "pci.0"
	}
	device := fmt.Sprintf("%s,netdev=%s,bus=%s,addr=%#x", qemuDevice, qemuNetdevID, bus, userNICSlot)
	if s.MAC != "" {
		device += ",mac=" + s.MAC
	}
	d.QEMUCommandline = &libvirtxml.DomainQEMUCommandline{Args: []libvirtxml.DomainQEMUCommandlineArg{
		{Value: "-netdev"}, {Value: netdev}, {Value: "-device"}, {Value: device},
	}}
}
