package qemuvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// Lines appended to the file while it is followed reach the log one by
// one, and the last Setup pass and error are remembered.
func TestSerialConsoleFollowsFile(t *testing.T) {
	logged := testio.CaptureLog(t)
	path := filepath.Join(t.TempDir(), "serial.log")
	c := NewSerialConsole(path)
	c.Start()
	// The file appears after the console starts following it, as QEMU
	// creates it.
	time.Sleep(300 * time.Millisecond)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		"winbake-standin: boot: firmware bios\r\n",
		"winbake-standin: setup: windowsPE: answer file D:\\autounattend.xml (1200 bytes)\r\n",
		"winbake-standin: setup: windowsPE: Windows Setup error: Windows cannot locate the disk. (disk 0 does not exist)\r\n",
		"winbake-standin: setup: stopped: the computer stays on\r\n",
		"no newline at the end",
	} {
		if _, err := f.WriteString(l); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Close()
	c.Stop()
	got := logged.String()
	for _, w := range []string{"[serial] winbake-standin: boot: firmware bios\n", "[serial] winbake-standin: setup: stopped", "[serial] no newline at the end\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("log lacks %q:\n%s", w, got)
		}
	}
	phase, line, setupErr := c.LastPhase()
	if phase != "windowsPE" || !strings.Contains(line, "Windows cannot locate the disk") || setupErr != "Windows cannot locate the disk. (disk 0 does not exist)" {
		t.Errorf("phase %q line %q error %q", phase, line, setupErr)
	}
	d := c.Diagnosis()
	if !strings.Contains(d, "last Windows Setup phase on the serial console: windowsPE") || !strings.Contains(d, "Windows Setup error: Windows cannot locate the disk") {
		t.Errorf("diagnosis %q", d)
	}
}

func TestSerialConsolePhases(t *testing.T) {
	testio.CaptureLog(t)
	for _, tc := range []struct {
		lines []string
		phase string
		says  string
	}{
		{nil, "", "the serial console stayed empty"},
		{[]string{"BdsDxe: loading Boot0001", "Press any key"}, "", "Windows Setup itself does not write to COM1"},
		{[]string{"1", "2", "\x1b[2J\x1b[01;01H\x1b[=3h", "3", "4", "5", "BdsDxe: failed to load Boot0002 \"UEFI QEMU HARDDISK\": Not Found"}, "",
			"its last lines: 2 | 3 | 4 | 5 | BdsDxe: failed to load Boot0002 \"UEFI QEMU HARDDISK\": Not Found; the firmware reported: BdsDxe: failed to load Boot0002 \"UEFI QEMU HARDDISK\": Not Found;"},
		{[]string{"\x1b[2JBdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0): Access Denied\r",
			"BdsDxe: failed to load Boot0002 \"UEFI QEMU HARDDISK QM00003 \" from PciRoot(0x0): Not Found",
			"BdsDxe: failed to start Boot0003 \"EFI Internal Shell\" from Fv(7CB8): Security Violation", "a", "b", "c", "d", "e"}, "",
			`the firmware reported: BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0): Access Denied (Secure Boot refused the boot loader`},
		{[]string{"winbake-standin: setup: windowsPE: complete, restarting", "winbake-standin: setup: specialize: computer name WIN-1"}, "specialize", "specialize (winbake-standin: setup: specialize: computer name WIN-1)"},
		{[]string{"winbake-standin: setup: oobeSystem: complete", "winbake-standin: setup: complete", "winbake-standin: windows: ready"}, "complete", "phase on the serial console: complete"},
	} {
		c := NewSerialConsole("serial.log")
		for _, l := range tc.lines {
			c.Observe(l + "\r\n")
		}
		if phase, _, _ := c.LastPhase(); phase != tc.phase {
			t.Errorf("%v: phase %q, want %q", tc.lines, phase, tc.phase)
		}
		if d := c.Diagnosis(); !strings.Contains(d, tc.says) || !strings.Contains(d, "PACKER_LOG=1") {
			t.Errorf("%v: diagnosis %q lacks %q", tc.lines, d, tc.says)
		}
	}
}
