package common

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The real driver against the host's QEMU: a machine without devices
// answers QMP, and StopVM kills it; qemu-img creates and converts disks.
func TestQemuDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 is not installed: make deps")
	}
	dir := t.TempDir()
	d := &QemuDriver{}
	disk := filepath.Join(dir, "d.qcow2")
	if err := d.CreateDisk(disk, 64); err != nil {
		t.Fatal(err)
	}
	if err := d.ConvertDisk(disk, filepath.Join(dir, "c.qcow2")); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	if err := d.StartVM([]QemuArg{{"-machine", "none"}, {"-nodefaults", ""}, {"-display", "none"},
		{"-qmp", "unix:" + sock + ",server=on,wait=off"}}); err != nil {
		t.Fatal(err)
	}
	defer d.StopVM()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var status string
	var err error
	for ctx.Err() == nil {
		if status, err = d.QueryStatus(ctx); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != "running" && status != "prelaunch" {
		t.Fatalf("status %q, %v", status, err)
	}
	if err := d.StopVM(); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitVM(ctx); err == nil {
		t.Fatal("WaitVM after StopVM: want an error, no VM")
	}
}
