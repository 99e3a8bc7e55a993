package qemuvm

import (
	"slices"
	"strings"
	"testing"
)

func baseSpec() VMSpec {
	return VMSpec{
		Name: "win", Machine: "q35", Accelerator: AccelTCG, CPUs: 2, MemoryMB: 4096,
		Firmware: FirmwareUEFI, OVMF: OVMF{Code: "/fw/code.fd", Vars: "/out/efivars.fd"},
		TPMSocket: "/out/tpm/swtpm.sock", InstallISO: "/iso/win.iso", AnswerCD: "/tmp/answer.iso",
		ExtraCDs: []string{"/iso/virtio.iso"}, Disk: "/out/win.qcow2", DiskInterface: DiskVirtioBlk,
		NetDevice: NetVirtio, HostPort: 3333, GuestPort: 5985,
		SerialLog: "/out/serial.log", QMPSocket: "/out/qmp.sock", PIDFile: "/out/qemu.pid",
	}
}

func TestVMSpecArgsUEFI(t *testing.T) {
	spec := baseSpec()
	spec.UserArgs = [][]string{{"-device", "qemu-xhci"}, {"-no-reboot"}}
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Flatten(args), " ")
	want := []string{
		"-name win -machine q35 -accel tcg -cpu max -smp 2 -m 4096 -nodefaults",
		"-serial file:/out/serial.log -qmp unix:/out/qmp.sock,server=on,wait=off -pidfile /out/qemu.pid",
		"-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/code.fd -drive if=pflash,format=raw,unit=1,file=/out/efivars.fd",
		"-chardev socket,id=chrtpm,path=/out/tpm/swtpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0",
		"-drive if=none,id=installcd,format=raw,file=/iso/win.iso,media=cdrom,readonly=on -device ide-cd,drive=installcd,bus=ide.0,bootindex=0",
		"-device ide-cd,drive=answercd,bus=ide.1,bootindex=1",
		"-device ide-cd,drive=cd0,bus=ide.2,bootindex=2",
		"-drive if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap,detect-zeroes=unmap,file=/out/win.qcow2 -device virtio-blk-pci,drive=disk0,discard_granularity=8192,bootindex=3",
		"-netdev user,id=n0,hostfwd=tcp:127.0.0.1:3333-:5985 -device virtio-net-pci,netdev=n0 -device qemu-xhci -no-reboot",
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("args lack %q:\n%s", w, got)
		}
	}
	if !strings.HasSuffix(got, "-device qemu-xhci -no-reboot") {
		t.Errorf("qemu_args are not last, in order:\n%s", got)
	}
	again, _ := spec.Args()
	if !slices.Equal(args, again) {
		t.Error("the same spec gave different arguments")
	}
	if strings.Contains(got, "-vnc") {
		t.Errorf("a VNC server without vnc:\n%s", got)
	}
	spec.VNC = "127.0.0.1:0,to=100"
	args, _ = spec.Args()
	if got := strings.Join(Flatten(args), " "); !strings.Contains(got, "-display none -vnc 127.0.0.1:0,to=100 -vga std") {
		t.Errorf("args lack the VNC server:\n%s", got)
	}
}

func TestVMSpecArgsBIOSSATAe1000Floppy(t *testing.T) {
	spec := baseSpec()
	spec.Machine, spec.Firmware, spec.TPMSocket, spec.AnswerCD, spec.ExtraCDs = "pc", FirmwareBIOS, "", "", nil
	spec.AnswerFloppy, spec.DiskInterface, spec.NetDevice, spec.Accelerator = "/tmp/a.flp", DiskSATA, NetE1000, AccelKVM
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Flatten(args), " ")
	for _, w := range []string{"-cpu host", "-drive if=floppy,index=0,format=raw,file=/tmp/a.flp", "ide-hd,drive=disk0,bus=ide.0,unit=1,bootindex=1", "-device e1000,netdev=n0"} {
		if !strings.Contains(got, w) {
			t.Errorf("args lack %q:\n%s", w, got)
		}
	}
	for _, no := range []string{"pflash", "tpm"} {
		if strings.Contains(got, no) {
			t.Errorf("BIOS args contain %s:\n%s", no, got)
		}
	}
}

func TestVMSpecArgsVirtioSCSIAndErrors(t *testing.T) {
	spec := baseSpec()
	spec.DiskInterface = DiskVirtioSCSI
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(Flatten(args), " "); !strings.Contains(got, "-device virtio-scsi-pci,id=scsi0") || !strings.Contains(got, "scsi-hd,drive=disk0,bus=scsi0.0,discard_granularity=8192,bootindex=3") {
		t.Errorf("virtio-scsi args: %s", got)
	}
	spec.UserArgs = [][]string{{"-a", "b", "c"}}
	if _, err := spec.Args(); err == nil || !strings.HasPrefix(err.Error(), "qemu_args:") {
		t.Errorf("3-element qemu_args entry: %v", err)
	}
	spec = baseSpec()
	spec.Machine, spec.ExtraCDs = "pc", []string{"a", "b", "c"}
	if _, err := spec.Args(); err == nil || !strings.Contains(err.Error(), "slot") {
		t.Errorf("too many CDs on pc: %v", err)
	}
}
