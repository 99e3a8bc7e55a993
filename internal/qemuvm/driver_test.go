package qemuvm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
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
	defer func() { _ = d.StopVM() }()
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

// QEMU serves the screen over VNC on the first free port of the range,
// and VNCAddress finds it through QMP.
func TestQemuDriverVNC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	if busyPort < 5900 {
		t.Fatalf("the kernel gave port %d, below VNC's 5900; the test needs a free port range from 5900 up", busyPort)
	}
	c := &VMConfig{VNC: true, VNCPortMin: busyPort, VNCPortMax: busyPort + 20}
	if errs := c.prepareVNC(); len(errs) > 0 {
		t.Fatal(errs)
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	d := &QemuDriver{}
	if err := d.StartVM([]QemuArg{{"-machine", "none"}, {"-nodefaults", ""}, {"-display", "none"},
		{"-vnc", c.VNCDisplay()}, {"-qmp", "unix:" + sock + ",server=on,wait=off"}}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.StopVM() }()
	addr, err := vncAddress(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" || port == fmt.Sprint(busyPort) {
		t.Fatalf("VNC at %s; want 127.0.0.1 and not the busy port %d", addr, busyPort)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	greeting := make([]byte, 12)
	if _, err := io.ReadFull(conn, greeting); err != nil || !strings.HasPrefix(string(greeting), "RFB 003.") {
		t.Fatalf("VNC greeting %q, %v; want the RFB protocol version", greeting, err)
	}
}
