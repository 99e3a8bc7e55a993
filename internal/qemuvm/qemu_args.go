package qemuvm

import (
	"fmt"
	"strings"
)

// QemuArg is one QEMU option: Flag (e.g. "-drive") and its Value, empty for
// flags without one (e.g. "-nodefaults").
type QemuArg struct {
	Flag  string
	Value string
}

// VMSpec is the typed description of the QEMU VM a builder runs. Args turns
// it into an ordered command line; the same spec always gives the same
// arguments.
type VMSpec struct {
	Name        string
	Machine     string // e.g. "q35"
	Accelerator string // "kvm" or "tcg"
	// HyperV gives a KVM VM the HyperVEnlightenments.
	HyperV   bool
	CPUs     int
	MemoryMB int

	Firmware string // FirmwareBIOS or FirmwareUEFI
	// SecureBoot turns on SMM and locks the flash to it (UEFI with a
	// Secure Boot OVMF).
	SecureBoot bool
	OVMF       OVMF   // Code is used as is; Vars is the VM's own copy
	TPMSocket  string // swtpm control socket; empty for no TPM

	InstallISO   string
	AnswerCD     string
	AnswerFloppy string
	ExtraCDs     []string // e.g. the virtio-win ISO

	Disk          string // qcow2
	DiskInterface string // DiskVirtioBlk, DiskVirtioSCSI or DiskSATA

	NetDevice string // NetVirtio or NetE1000
	HostPort  int    // forwarded from 127.0.0.1 to GuestPort (user network)
	GuestPort int
	// ExtraHostForwards are more forwards from 127.0.0.1 (user network).
	ExtraHostForwards []HostForward
	// Network is NetworkUser (default) or NetworkBridge; Bridge names the
	// host bridge and MAC the NIC's address (bridge network).
	Network string
	Bridge  string
	MAC     string
	// UserNetwork replaces QEMU's default user network (optional).
	UserNetwork *UserNetwork

	SerialLog string
	QMPSocket string
	PIDFile   string
	// VNC is the -vnc display ("127.0.0.1:0,to=100"); empty for none.
	VNC string

	// UserArgs are appended unchanged after winbake's own arguments
	// (`qemu_args`): each entry is one option and its value, if any.
	UserArgs [][]string
}

// Args builds the ordered QEMU argument list. It fails when the devices do
// not fit the machine's IDE/AHCI slots.
func (s VMSpec) Args() ([]QemuArg, error) {
	machine := s.Machine
	if s.SecureBoot {
		machine += ",smm=on"
	}
	a := []QemuArg{
		{"-name", s.Name},
		{"-machine", machine},
		{"-accel", s.Accelerator},
	}
	switch {
	case s.Accelerator == AccelKVM && s.HyperV:
		a = append(a, QemuArg{"-cpu", hypervCPU("host")})
	case s.HyperV:
		return nil, fmt.Errorf("hyperv_enlightenments: the Hyper-V enlightenments need KVM, not %s", s.Accelerator)
	case s.Accelerator == AccelKVM:
		a = append(a, QemuArg{"-cpu", "host"})
	default:
		a = append(a, QemuArg{"-cpu", "max"})
	}
	a = append(a,
		QemuArg{"-smp", fmt.Sprint(s.CPUs)},
		QemuArg{"-m", fmt.Sprint(s.MemoryMB)},
		QemuArg{"-nodefaults", ""},
		QemuArg{"-display", "none"},
	)
	if s.VNC != "" {
		a = append(a, QemuArg{"-vnc", s.VNC})
	}
	a = append(a,
		QemuArg{"-vga", "std"},
		QemuArg{"-serial", "file:" + s.SerialLog},
		QemuArg{"-qmp", "unix:" + s.QMPSocket + ",server=on,wait=off"},
		QemuArg{"-pidfile", s.PIDFile},
	)
	if s.Firmware == FirmwareUEFI {
		if s.SecureBoot {
			// Only SMM code may write the variable store, or the OS could
			// change the Secure Boot keys.
			a = append(a, QemuArg{"-global", "driver=cfi.pflash01,property=secure,value=on"})
		}
		a = append(a,
			QemuArg{"-drive", fmt.Sprintf("if=pflash,format=%s,unit=0,readonly=on,file=%s", orRaw(s.OVMF.CodeFormat), s.OVMF.Code)},
			QemuArg{"-drive", fmt.Sprintf("if=pflash,format=%s,unit=1,file=%s", orRaw(s.OVMF.VarsFormat), s.OVMF.Vars)})
	}
	if s.TPMSocket != "" {
		a = append(a,
			QemuArg{"-chardev", "socket,id=chrtpm,path=" + s.TPMSocket},
			QemuArg{"-tpmdev", "emulator,id=tpm0,chardev=chrtpm"},
			QemuArg{"-device", "tpm-tis,tpmdev=tpm0"})
	}

	// IDE (pc: two buses, two units each) or AHCI (q35: six ports).
	type slot struct{ bus, unit string }
	var slots []slot
	if s.Machine == "pc" || strings.HasPrefix(s.Machine, "pc-i440fx") {
		slots = []slot{{"ide.0", "0"}, {"ide.0", "1"}, {"ide.1", "0"}, {"ide.1", "1"}}
	} else {
		for i := range 6 {
			slots = append(slots, slot{fmt.Sprintf("ide.%d", i), ""})
		}
	}
	next, boot := 0, 0
	ide := func(kind, id, file, format string) error {
		if next >= len(slots) {
			return fmt.Errorf("no IDE/AHCI slot left on machine %q for %s", s.Machine, file)
		}
		sl := slots[next]
		next++
		drive := fmt.Sprintf("if=none,id=%s,format=%s,file=%s", id, format, file)
		if kind == "ide-cd" {
			drive += ",media=cdrom,readonly=on"
		} else {
			drive += ",discard=unmap,detect-zeroes=unmap"
		}
		dev := fmt.Sprintf("%s,drive=%s,bus=%s", kind, id, sl.bus)
		if sl.unit != "" {
			dev += ",unit=" + sl.unit
		}
		dev += fmt.Sprintf(",bootindex=%d", boot)
		boot++
		a = append(a, QemuArg{"-drive", drive}, QemuArg{"-device", dev})
		return nil
	}
	if s.InstallISO != "" {
		if err := ide("ide-cd", "installcd", s.InstallISO, "raw"); err != nil {
			return nil, err
		}
	}
	if s.AnswerCD != "" {
		if err := ide("ide-cd", "answercd", s.AnswerCD, "raw"); err != nil {
			return nil, err
		}
	}
	for i, cd := range s.ExtraCDs {
		if err := ide("ide-cd", fmt.Sprintf("cd%d", i), cd, "raw"); err != nil {
			return nil, err
		}
	}
	if s.AnswerFloppy != "" && (s.Machine == "pc" || strings.HasPrefix(s.Machine, "pc-i440fx")) {
		a = append(a, QemuArg{"-drive", "if=floppy,index=0,format=raw,file=" + s.AnswerFloppy})
	} else if s.AnswerFloppy != "" {
		a = append(a,
			QemuArg{"-drive", "if=none,id=fd0,format=raw,file=" + s.AnswerFloppy},
			QemuArg{"-device", "isa-fdc,driveA=fd0"})
	}
	diskDrive := "if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap,detect-zeroes=unmap,file=" + s.Disk
	granularity := discardGranularityProperty(s.DiskInterface)
	switch s.DiskInterface {
	case DiskVirtioBlk:
		a = append(a, QemuArg{"-drive", diskDrive}, QemuArg{"-device", fmt.Sprintf("virtio-blk-pci,drive=disk0,%s,bootindex=%d", granularity, boot)})
	case DiskVirtioSCSI:
		a = append(a, QemuArg{"-device", "virtio-scsi-pci,id=scsi0"}, QemuArg{"-drive", diskDrive},
			QemuArg{"-device", fmt.Sprintf("scsi-hd,drive=disk0,bus=scsi0.0,%s,bootindex=%d", granularity, boot)})
	case DiskSATA:
		if err := ide("ide-hd", "disk0", s.Disk, "qcow2"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("disk_interface: %q is not supported", s.DiskInterface)
	}
	nic := "virtio-net-pci"
	if s.NetDevice == NetE1000 {
		nic = "e1000"
	}
	if s.MAC != "" {
		nic += ",mac=" + s.MAC
	}
	if s.Network == NetworkBridge {
		// qemu-bridge-helper creates the tap device and attaches it to the
		// bridge, if /etc/qemu/bridge.conf allows it.
		a = append(a, QemuArg{"-netdev", "bridge,id=n0,br=" + s.Bridge})
	} else {
		// Not restrict=on: the guest reaches the host's 127.0.0.1 as
		// 10.0.2.2 (WinbakeHostIP).
		netdev := fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d", s.HostPort, s.GuestPort)
		for _, f := range s.ExtraHostForwards {
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
		}
		extra, err := s.UserNetwork.netdevOptions()
		if err != nil {
			return nil, err
		}
		if extra != "" {
			netdev += "," + extra
		}
		a = append(a, QemuArg{"-netdev", netdev})
	}
	a = append(a, QemuArg{"-device", nic + ",netdev=n0"})
	for _, u := range s.UserArgs {
		switch len(u) {
		case 1:
			a = append(a, QemuArg{u[0], ""})
		case 2:
			a = append(a, QemuArg{u[0], u[1]})
		default:
			return nil, fmt.Errorf("qemu_args: %q must be one option and at most one value", u)
		}
	}
	return a, nil
}

// HostForward is a TCP port forward from 127.0.0.1:HostPort to the
// guest's GuestPort.
type HostForward struct{ HostPort, GuestPort int }

// Flatten turns the arguments into the argv QEMU receives.
func Flatten(args []QemuArg) []string {
	var out []string
	for _, a := range args {
		out = append(out, a.Flag)
		if a.Value != "" {
			out = append(out, a.Value)
		}
	}
	return out
}
