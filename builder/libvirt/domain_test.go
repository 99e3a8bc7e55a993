package libvirt

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

func baseSpec() DomainSpec {
	return DomainSpec{
		Name: "win", Type: "qemu", Machine: "q35", CPUs: 2, MemoryMB: 4096,
		Firmware: qemuvm.FirmwareBIOS, Pool: "default",
		InstallISO: "win-install.iso", AnswerCD: "win-answer.iso", Disk: "win.qcow2",
		DiskInterface: qemuvm.DiskVirtioBlk, NetDevice: qemuvm.NetVirtio, MAC: "52:54:00:01:02:03",
		NetworkMode: NetUser, ForwardAddress: "127.0.0.1", HostPort: 3333, GuestPort: 5985,
		SerialLog: "/var/log/libvirt/qemu/win-serial.log",
	}
}

// roundTrip marshals the spec's domain and parses it back, as libvirt
// would read it.
func roundTrip(t *testing.T, s DomainSpec) (*libvirtxml.Domain, string) {
	t.Helper()
	d, err := s.Domain()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back libvirtxml.Domain
	if err := back.Unmarshal(doc); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return &back, doc
}

func diskByDevice(d *libvirtxml.Domain, device string) []libvirtxml.DomainDisk {
	var out []libvirtxml.DomainDisk
	for _, disk := range d.Devices.Disks {
		if disk.Device == device {
			out = append(out, disk)
		}
	}
	return out
}

func TestDomainBIOSUserNetworking(t *testing.T) {
	d, doc := roundTrip(t, baseSpec())
	if d.Type != "qemu" || d.Name != "win" || d.OS.Type.Machine != "q35" || d.OS.Firmware != "" || d.OS.Loader != nil {
		t.Errorf("type/machine/firmware wrong:\n%s", doc)
	}
	if d.CPU == nil || d.CPU.Mode != "maximum" || d.VCPU.Value != 2 || d.Memory.Value != 4096 || d.Memory.Unit != "MiB" {
		t.Errorf("cpu/memory wrong:\n%s", doc)
	}
	disks := diskByDevice(d, "disk")
	if len(disks) != 1 || disks[0].Target.Bus != "virtio" || disks[0].Driver.Type != "qcow2" || disks[0].Driver.Discard != "unmap" ||
		disks[0].Source.Volume == nil || disks[0].Source.Volume.Pool != "default" || disks[0].Source.Volume.Volume != "win.qcow2" || disks[0].Boot.Order != 1 {
		t.Errorf("system disk wrong:\n%s", doc)
	}
	cds := diskByDevice(d, "cdrom")
	if len(cds) != 2 || cds[0].Source.Volume.Volume != "win-install.iso" || cds[0].Boot == nil || cds[0].Boot.Order != 2 ||
		cds[1].Source.Volume.Volume != "win-answer.iso" || cds[1].Boot != nil || cds[0].Target.Bus != "sata" || cds[0].ReadOnly == nil {
		t.Errorf("CDs wrong:\n%s", doc)
	}
	if len(d.Devices.Interfaces) != 0 || d.QEMUCommandline == nil {
		t.Fatalf("user networking must go through qemu:commandline:\n%s", doc)
	}
	var args []string
	for _, a := range d.QEMUCommandline.Args {
		args = append(args, a.Value)
	}
	want := []string{"-netdev", "user,id=winbake0,hostfwd=tcp:127.0.0.1:3333-:5985", "-device", "virtio-net-pci,netdev=winbake0,bus=pcie.0,addr=0x10,mac=52:54:00:01:02:03"}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("qemu:commandline %q, want %q", args, want)
	}
	if !strings.Contains(doc, `xmlns="http://libvirt.org/schemas/domain/qemu/1.0"`) {
		t.Errorf("qemu namespace missing:\n%s", doc)
	}
	if len(d.Devices.Serials) != 1 || d.Devices.Serials[0].Log.File != "/var/log/libvirt/qemu/win-serial.log" || d.Devices.Serials[0].Source.Pty == nil {
		t.Errorf("serial wrong:\n%s", doc)
	}
	if len(d.Devices.Graphics) != 0 || len(d.Devices.TPMs) != 0 || d.Features.SMM != nil {
		t.Errorf("unexpected graphics/TPM/SMM:\n%s", doc)
	}
	if d.Devices.MemBalloon == nil || d.Devices.MemBalloon.Model != "none" {
		t.Errorf("memballoon should be none:\n%s", doc)
	}
	// The guest agent's channel: libvirt picks the socket path.
	if ch := d.Devices.Channels; len(ch) != 1 || ch[0].Target == nil || ch[0].Target.VirtIO == nil || ch[0].Target.VirtIO.Name != "org.qemu.guest_agent.0" ||
		ch[0].Source == nil || ch[0].Source.UNIX == nil || ch[0].Source.UNIX.Mode != "bind" || ch[0].Source.UNIX.Path != "" ||
		!strings.Contains(doc, `<channel type="unix">`) {
		t.Errorf("guest agent channel wrong:\n%s", doc)
	}
}

func TestDomainUEFIVariants(t *testing.T) {
	cases := []struct {
		name       string
		secureBoot bool
		tpm        bool
		loader     string
		check      func(t *testing.T, d *libvirtxml.Domain, doc string)
	}{
		{"uefi without secure boot", false, false, "", func(t *testing.T, d *libvirtxml.Domain, doc string) {
			if d.OS.Firmware != "efi" || d.OS.FirmwareInfo == nil || len(d.OS.FirmwareInfo.Features) != 1 ||
				d.OS.FirmwareInfo.Features[0] != (libvirtxml.DomainOSFirmwareFeature{Enabled: "no", Name: "secure-boot"}) || d.Features.SMM != nil {
				t.Errorf("firmware:\n%s", doc)
			}
		}},
		{"secure boot with TPM", true, true, "", func(t *testing.T, d *libvirtxml.Domain, doc string) {
			f := d.OS.FirmwareInfo
			if d.OS.Firmware != "efi" || f == nil || len(f.Features) != 2 || f.Features[0].Name != "secure-boot" || f.Features[0].Enabled != "yes" ||
				f.Features[1].Name != "enrolled-keys" || d.Features.SMM == nil || d.Features.SMM.State != "on" {
				t.Errorf("secure boot:\n%s", doc)
			}
			if len(d.Devices.TPMs) != 1 || d.Devices.TPMs[0].Model != "tpm-crb" || d.Devices.TPMs[0].Backend.Emulator == nil ||
				d.Devices.TPMs[0].Backend.Emulator.Version != "2.0" {
				t.Errorf("TPM:\n%s", doc)
			}
		}},
		{"explicit firmware files", false, true, "/usr/share/OVMF/OVMF_CODE_4M.fd", func(t *testing.T, d *libvirtxml.Domain, doc string) {
			if d.OS.Firmware != "" || d.OS.Loader == nil || d.OS.Loader.Path != "/usr/share/OVMF/OVMF_CODE_4M.fd" || d.OS.Loader.Type != "pflash" ||
				d.OS.Loader.Readonly != "yes" || d.OS.NVRam == nil || d.OS.NVRam.Template != "/usr/share/OVMF/OVMF_VARS_4M.fd" {
				t.Errorf("loader:\n%s", doc)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			s.Firmware, s.SecureBoot, s.TPM = qemuvm.FirmwareUEFI, tc.secureBoot, tc.tpm
			if tc.loader != "" {
				s.LoaderCode, s.LoaderVars, s.LoaderFormat = tc.loader, "/usr/share/OVMF/OVMF_VARS_4M.fd", "raw"
			}
			d, doc := roundTrip(t, s)
			tc.check(t, d, doc)
		})
	}
}

func TestDomainDiskInterfacesAndMedia(t *testing.T) {
	for _, tc := range []struct {
		iface, bus, dev, controller string
	}{
		{qemuvm.DiskVirtioBlk, "virtio", "vda", ""},
		{qemuvm.DiskVirtioSCSI, "scsi", "sda", "virtio-scsi"},
		{qemuvm.DiskSATA, "sata", "sda", ""},
	} {
		t.Run(tc.iface, func(t *testing.T) {
			s := baseSpec()
			s.DiskInterface = tc.iface
			s.ExtraCDs = []string{"win-virtio-win.iso"}
			d, doc := roundTrip(t, s)
			disk := diskByDevice(d, "disk")[0]
			if disk.Target.Bus != tc.bus || disk.Target.Dev != tc.dev {
				t.Errorf("disk target %+v, want %s %s", disk.Target, tc.bus, tc.dev)
			}
			var models []string
			for _, c := range d.Devices.Controllers {
				models = append(models, c.Model)
			}
			if (tc.controller == "") != (len(models) == 0) || (tc.controller != "" && models[0] != tc.controller) {
				t.Errorf("controllers %v, want %q", models, tc.controller)
			}
			seen := map[string]bool{}
			for _, dd := range d.Devices.Disks {
				if seen[dd.Target.Dev] {
					t.Errorf("target %s used twice:\n%s", dd.Target.Dev, doc)
				}
				seen[dd.Target.Dev] = true
			}
			if cds := diskByDevice(d, "cdrom"); len(cds) != 3 || cds[2].Source.Volume.Volume != "win-virtio-win.iso" {
				t.Errorf("virtio-win CD missing:\n%s", doc)
			}
		})
	}
	s := baseSpec()
	s.AnswerCD, s.AnswerFloppy = "", "win-answer.img"
	d, doc := roundTrip(t, s)
	fl := diskByDevice(d, "floppy")
	if len(fl) != 1 || fl[0].Target.Bus != "fdc" || fl[0].ReadOnly == nil || fl[0].Source.Volume.Volume != "win-answer.img" || len(diskByDevice(d, "cdrom")) != 1 {
		t.Errorf("floppy:\n%s", doc)
	}
}

func TestDomainNetworks(t *testing.T) {
	s := baseSpec()
	s.NetworkMode, s.Network, s.NetDevice = NetLibvirt, "default", qemuvm.NetE1000
	d, doc := roundTrip(t, s)
	if d.QEMUCommandline != nil || len(d.Devices.Interfaces) != 1 {
		t.Fatalf("libvirt network:\n%s", doc)
	}
	i := d.Devices.Interfaces[0]
	if i.Source.Network == nil || i.Source.Network.Network != "default" || i.Model.Type != "e1000" || i.MAC.Address != "52:54:00:01:02:03" {
		t.Errorf("interface:\n%s", doc)
	}

	s = baseSpec()
	s.NetworkMode, s.Bridge = NetBridge, "br0"
	d, doc = roundTrip(t, s)
	if len(d.Devices.Interfaces) != 1 || d.Devices.Interfaces[0].Source.Bridge == nil || d.Devices.Interfaces[0].Source.Bridge.Bridge != "br0" ||
		d.Devices.Interfaces[0].Model.Type != "virtio" || d.QEMUCommandline != nil {
		t.Errorf("bridge:\n%s", doc)
	}

	s = baseSpec()
	s.NetDevice, s.ForwardAddress, s.Machine = qemuvm.NetE1000, "0.0.0.0", "pc"
	d, _ = roundTrip(t, s)
	if got := d.QEMUCommandline.Args[1].Value + " " + d.QEMUCommandline.Args[3].Value; got != "user,id=winbake0,hostfwd=tcp:0.0.0.0:3333-:5985 e1000,netdev=winbake0,bus=pci.0,addr=0x10,mac=52:54:00:01:02:03" {
		t.Errorf("user e1000: %s", got)
	}
}

func TestDomainKVMAndGraphics(t *testing.T) {
	s := baseSpec()
	s.Type, s.VNCListen = "kvm", "127.0.0.1"
	d, doc := roundTrip(t, s)
	if d.Type != "kvm" || d.CPU.Mode != "host-passthrough" {
		t.Errorf("kvm:\n%s", doc)
	}
	if len(d.Devices.Graphics) != 1 || d.Devices.Graphics[0].VNC == nil || d.Devices.Graphics[0].VNC.Listeners[0].Address.Address != "127.0.0.1" || len(d.Devices.Videos) != 1 {
		t.Errorf("graphics:\n%s", doc)
	}
	s.Disk = ""
	if _, err := s.Domain(); err == nil {
		t.Error("a domain without a system disk was built")
	}
}

func TestKeycodesCoverBootCommandKeys(t *testing.T) {
	keys, err := qemuvm.ParseBootCommand([]string{"aZ09 .,/\\-=;:_<enter><spacebar><esc><tab><f1><f12><up><down><left><right><bs><del>"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		for _, q := range k.QCodes {
			if linuxKeycodes[q] == 0 {
				t.Errorf("no Linux keycode for %q", q)
			}
		}
	}
	if got := keycodes([]string{"shift", "a"}); len(got) != 2 || got[0] != 42 || got[1] != 30 {
		t.Errorf("shift+a = %v", got)
	}
}
