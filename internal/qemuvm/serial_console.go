package qemuvm

import (
	"bufio"
	"errors"
	"io"
	"log"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// SerialLogPrefix starts every serial console line copied into the Packer
// log (PACKER_LOG=1).
const SerialLogPrefix = "[serial] "

// setupPassLine recognises Windows Setup progress on the serial console:
// a line naming a configuration pass as "setup: <pass>" (as winbake's
// stand-in Windows and FirstLogonCommands that echo to COM1 write it).
// Real Windows Setup writes nothing to COM1, so for real media the last
// phase is usually unknown and the error says so.
var setupPassLine = regexp.MustCompile(`\bsetup: (windowsPE|offlineServicing|generalize|specialize|auditSystem|auditUser|oobeSystem)\b`)

// setupCompleteLine is "setup: complete" at the end of a line.
var setupCompleteLine = regexp.MustCompile(`\bsetup: complete\s*$`)

// ansiEscape matches the terminal escape sequences firmware and boot
// loaders write to the console.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]`)

// firmwareBootFailure is OVMF's line for a boot option it could not
// start ("...: Access Denied" when Secure Boot refuses the loader).
var firmwareBootFailure = regexp.MustCompile(`BdsDxe: failed to (load|start) .*`)

// firmwareStartsCD is OVMF's line for starting the boot loader of a CD
// boot option (SATA: "UEFI QEMU DVD-ROM QM00001", SCSI: "UEFI QEMU QEMU
// CD-ROM"); Windows media's cdboot asks "Press any key to boot from CD or
// DVD" right after it.
var firmwareStartsCD = regexp.MustCompile(`BdsDxe: starting Boot[0-9A-Fa-f]{4} "[^"]*(DVD|CD)-ROM`)

// lastLines is how many console lines a diagnosis without a Setup phase
// quotes.
const lastLines = 5

// setupErrorMarker precedes the message of an error dialog Setup shows,
// on consoles that report it.
const setupErrorMarker = "Windows Setup error: "

// SerialConsole follows the VM's serial console file: every line goes to
// the Packer log, and the last Setup phase and error seen are kept for the
// build's error message.
type SerialConsole struct {
	path string

	mu         sync.Mutex
	phase      string
	phaseLine  string
	setupError string
	lines      int
	// last holds the last few non-empty lines, for consoles that show no
	// Setup phase (firmware messages, a boot loader's error).
	last []string
	// bootFailure is OVMF's last "failed to load/start" line; bootRefusal
	// the first one where Secure Boot refused an image ("Access Denied",
	// "Security Violation").
	bootFailure, bootRefusal string
	// cdStarts counts OVMF starting a CD's boot loader.
	cdStarts int
	// refused is closed when bootRefusal is first set.
	refused chan struct{}

	stop chan struct{}
	done chan struct{}
}

// NewSerialConsole returns a SerialConsole for the file at path (written
// by QEMU's -serial file:).
func NewSerialConsole(path string) *SerialConsole {
	return &SerialConsole{path: path, refused: make(chan struct{})}
}

// Start follows the file in the background until Stop. The file may not
// exist yet.
func (c *SerialConsole) Start() {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.follow()
}

// Stop reads what is left in the file and stops following it.
func (c *SerialConsole) Stop() {
	if c.stop == nil {
		return
	}
	close(c.stop)
	<-c.done
	c.stop = nil
}

func (c *SerialConsole) follow() {
	defer close(c.done)
	var f *os.File
	for f == nil {
		var err error
		if f, err = os.Open(c.path); err == nil {
			break
		}
		select {
		case <-c.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var partial string
	for {
		line, err := r.ReadString('\n')
		partial += line
		if err == nil {
			c.Observe(partial)
			partial = ""
			continue
		}
		if !errors.Is(err, io.EOF) {
			log.Printf("%sreading %s: %v", SerialLogPrefix, c.path, err)
			return
		}
		select {
		case <-c.stop:
			// One last read of what QEMU wrote before it stopped.
			rest, _ := io.ReadAll(r)
			for _, l := range strings.SplitAfter(partial+string(rest), "\n") {
				if strings.TrimSpace(l) != "" {
					c.Observe(l)
				}
			}
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Observe handles one console line: it is logged, and a Setup phase or
// error on it is remembered.
func (c *SerialConsole) Observe(line string) {
	line = strings.TrimRight(line, "\r\n")
	log.Printf("%s%s", SerialLogPrefix, line)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines++
	if firmwareStartsCD.MatchString(line) {
		c.cdStarts++
	}
	if m := firmwareBootFailure.FindString(line); m != "" {
		c.bootFailure = strings.TrimSpace(ansiEscape.ReplaceAllString(m, ""))
		if c.bootRefusal == "" && (strings.HasSuffix(c.bootFailure, "Access Denied") || strings.HasSuffix(c.bootFailure, "Security Violation")) {
			c.bootRefusal = c.bootFailure
			close(c.refused)
		}
	}
	if plain := strings.TrimSpace(ansiEscape.ReplaceAllString(line, "")); plain != "" {
		c.last = append(c.last, plain)
		if len(c.last) > lastLines {
			c.last = c.last[1:]
		}
	}
	if i := strings.Index(line, setupErrorMarker); i >= 0 {
		c.setupError = strings.TrimSpace(line[i+len(setupErrorMarker):])
	}
	if m := setupPassLine.FindStringSubmatch(line); m != nil {
		c.phase, c.phaseLine = m[1], strings.TrimSpace(line)
	} else if setupCompleteLine.MatchString(line) {
		c.phase, c.phaseLine = "complete", strings.TrimSpace(line)
	}
}

// BootRefused is closed once the console shows Secure Boot refusing a
// boot loader ("Access Denied" or "Security Violation" from OVMF's BdsDxe);
// BootRefusal returns that line.
func (c *SerialConsole) BootRefused() <-chan struct{} { return c.refused }

// BootRefusal is the firmware's line refusing a boot loader under Secure
// Boot, "" when there was none.
func (c *SerialConsole) BootRefusal() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bootRefusal
}

// CDBootStarts counts the times the console showed the firmware starting
// a CD's boot loader.
func (c *SerialConsole) CDBootStarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cdStarts
}

// LastPhase returns the last Setup pass seen ("windowsPE", "specialize",
// "oobeSystem", "complete"; "" when none), the line that named it, and the
// message of a Setup error seen ("" when none).
func (c *SerialConsole) LastPhase() (phase, line, setupError string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase, c.phaseLine, c.setupError
}

// Diagnosis describes what the serial console showed, for a failed
// build's error.
func (c *SerialConsole) Diagnosis() string {
	phase, line, setupErr := c.LastPhase()
	c.mu.Lock()
	lines, last, bootFailure, bootRefusal := c.lines, append([]string(nil), c.last...), c.bootFailure, c.bootRefusal
	c.mu.Unlock()
	var b strings.Builder
	switch {
	case phase != "":
		b.WriteString("last Windows Setup phase on the serial console: " + phase + " (" + line + ")")
	case lines == 0:
		b.WriteString("the serial console stayed empty")
	default:
		b.WriteString("no Windows Setup phase on the serial console (Windows Setup itself does not write to COM1)")
		if len(last) > 0 {
			b.WriteString("; its last lines: " + strings.Join(last, " | "))
		}
	}
	if setupErr != "" {
		b.WriteString("; Windows Setup error: " + setupErr)
	}
	switch {
	case bootRefusal != "":
		b.WriteString("; the firmware reported: " + bootRefusal + " (Secure Boot refused the boot loader: is the media signed for the enrolled keys?)")
	case bootFailure != "":
		b.WriteString("; the firmware reported: " + bootFailure)
	}
	b.WriteString("; the whole console is in the Packer log (PACKER_LOG=1, lines starting " + strings.TrimSpace(SerialLogPrefix) + ")")
	return b.String()
}
