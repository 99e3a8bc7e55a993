// Command winbake-standin is the init program (PID 1) of winbake's stand-in
// Windows guest: a Debian kernel and busybox booted from the stand-in install
// ISO (scripts/standin-iso.sh) or from the disk it installed itself to. It
// mounts the kernel file systems, opens the serial console and runs
// internal/testing/testguest/setup, which plays Windows Setup and the installed
// Windows. It never exits: PID 1 exiting would panic the kernel.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/setup"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "winbake-standin: this is the stand-in guest's init program; it runs as PID 1 inside the stand-in VM only")
		os.Exit(2)
	}
	mounts := []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	}
	for _, m := range mounts {
		_ = os.MkdirAll(m.dir, 0o755)
		_ = syscall.Mount(m.src, m.dir, m.fstype, 0, "")
	}
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		_ = os.MkdirAll("/sys/firmware/efi/efivars", 0o755)
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err == nil {
		for fd := 0; fd <= 2; fd++ {
			_ = syscall.Dup2(int(console.Fd()), fd)
		}
	}
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	os.Setenv("HOME", "/root")
	// Ctrl-Alt-Del and the like must not kill PID 1.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)

	log := setup.NewLog(os.Stdout)
	func() {
		defer func() {
			if r := recover(); r != nil {
				log.SetupError(&setup.Error{Pass: "boot", Message: "The computer restarted unexpectedly or encountered an unexpected error.",
					Details: []string{fmt.Sprint(r)}})
			}
		}()
		setup.Main(log)
	}()
	setup.Idle()
}
