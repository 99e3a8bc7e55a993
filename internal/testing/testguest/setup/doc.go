// Package setup is Windows Setup as winbake's stand-in Windows guest plays it:
// a small Linux that boots from the stand-in install ISO
// (scripts/standin-iso.sh), looks for autounattend.xml on every attached CD
// and floppy, and behaves like Setup where winbake's builders depend on it.
//
// Every CD (the install ISO, the answer-file CD, virtio-win, a config
// drive) is read from its device through package cdfs, which finds files as
// Windows' CD-ROM file system does; what CDFS cannot find, Setup, the first
// logon's commands and cloudbase-init do not see either, and the console
// says why ("not found", with CDFS's reason).
//
// windowsPE (booted from the ISO): the answer file is read and checked; the
// drivers of PnpCustomizationsWinPE's paths are loaded (a virtio disk is
// invisible without viostor/vioscsi); the image is selected by /IMAGE/NAME
// from sources/install.wim; the disk is partitioned as DiskConfiguration says
// (MBR or GPT, with Windows' partition types); the stand-in installs itself on
// the Windows partition with a boot loader for the firmware it runs under
// (GRUB in the MBR and its gap for BIOS; for UEFI the ISO's Secure Boot chain
// on the ESP: shim as \EFI\BOOT\BOOTX64.EFI, the signed GRUB beside it) and
// restarts.
//
// First boot from disk: specialize (computer name, time zone) and oobeSystem
// (accounts, automatic logon, FirstLogonCommands). The WinRM service starts
// only when the FirstLogonCommands enabled it; later boots start it again
// when its start mode says so. FirstLogonCommands may install from the
// attached media (lettered from D: in device order): `pnputil /add-driver
// <inf> [/install]` and `msiexec /i <qemu-ga-x86_64.msi> /qn`; with the
// QEMU-GA service installed and the VirtIO Serial driver (vioser) in the
// driver store, every boot runs the QEMU guest agent (package qga) on the
// virtio-serial port org.qemu.guest_agent.0. Everything is recorded in State on the
// installed Windows partition, so it survives restarts and a boot of the
// disk alone.
//
// The simulated Windows keeps its files on that partition, so what it
// writes and deletes takes and leaves clusters of the VM's qcow2 disk. It
// frees them on the disk only with Optimize-Volume -ReTrim (no delete
// notifications): the retrim reads the disk's unmap limits from Linux
// (/sys/block/<disk>/queue/discard_granularity and discard_max_bytes, set
// by QEMU's discard_granularity) and the bus from the driver, applies
// Windows' rule (winsim: no retrim of a virtio disk below 8 KiB), and
// discards the partition's free clusters with FITRIM, so a disk attached
// with discard=unmap really shrinks.
//
// Errors Setup would show stop the guest with the message on the serial
// console (see ErrorLine); the VM stays up, as Setup's error dialog does.
// Every line the package writes starts with LogPrefix.
package setup

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Console lines tests and host helpers wait for.
const (
	// LogPrefix starts every line the stand-in writes.
	LogPrefix = "winbake-standin: "
	// ErrorMarker follows "setup: <pass>: " on the line carrying the
	// message Windows Setup shows.
	ErrorMarker = "Windows Setup error: "
	// StoppedLine is logged after a Setup error; the guest then idles.
	StoppedLine = LogPrefix + "setup: stopped: the computer stays on showing the error, as Windows Setup does"
	// WindowsPEDoneLine: windowsPE finished, the guest restarts.
	WindowsPEDoneLine = LogPrefix + "setup: windowsPE: complete, restarting"
	// SetupCompleteLine: specialize and oobeSystem ran, FirstLogonCommands
	// included.
	SetupCompleteLine = LogPrefix + "setup: complete"
	// ReadyLine: an installed boot has started its services.
	ReadyLine = LogPrefix + "windows: ready"
	// WinRMListeningPrefix starts the line logged once WinRM listens.
	WinRMListeningPrefix = LogPrefix + "winrm: listening on "
	// WinRMNotStartedPrefix starts the line logged when WinRM does not run.
	WinRMNotStartedPrefix = LogPrefix + "winrm: not started: "
	// PowerOffLine and RestartLine are logged right before the guest
	// powers off or restarts.
	PowerOffLine = LogPrefix + "power: shutting down"
	RestartLine  = LogPrefix + "power: restarting"
)

// ErrorLine is the console line that carries Setup's message for pass.
func ErrorLine(pass, message string) string {
	return LogPrefix + "setup: " + pass + ": " + ErrorMarker + message
}

// Error is an error Windows Setup shows. Message is Setup's text; Details
// say what the stand-in found.
type Error struct {
	Pass    string
	Message string
	Details []string
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	return e.Message + " (" + strings.Join(e.Details, "; ") + ")"
}

// Log writes prefixed lines to the console.
type Log struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLog returns a Log writing to w.
func NewLog(w io.Writer) *Log { return &Log{w: w} }

// Printf writes one line "winbake-standin: <component>: <message>".
func (l *Log) Printf(component, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(l.w, "%s%s: %s\r\n", LogPrefix, component, line)
	}
}

// Line writes a line as it is (it should start with LogPrefix).
func (l *Log) Line(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s\r\n", line)
}

// SetupError writes the error as Setup shows it.
func (l *Log) SetupError(e *Error) {
	l.Line(ErrorLine(e.Pass, e.Message))
	for _, d := range e.Details {
		l.Printf("setup: "+e.Pass, "detail: %s", d)
	}
	l.Line(StoppedLine)
}
