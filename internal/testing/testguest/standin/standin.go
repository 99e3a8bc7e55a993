// Package standin starts winbake's stand-in Windows guest under QEMU (TCG)
// for tests: the stand-in install ISO (make standin-iso), an answer file on
// a CD or floppy, a qcow2 disk on virtio, virtio-scsi or SATA, SeaBIOS or
// OVMF with a swtpm TPM 2.0, user networking restricted to a host port
// forward to the guest's WinRM port. It watches the serial console log and
// always cleans up: QEMU, swtpm and the VM's directory.
package standin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Firmware of the VM.
type Firmware string

const (
	BIOS Firmware = "bios"
	UEFI Firmware = "uefi"
)

// Disk buses.
const (
	BusVirtio     = "virtio"      // virtio-blk-pci (viostor)
	BusVirtioSCSI = "virtio-scsi" // virtio-scsi-pci + scsi-hd (vioscsi)
	BusSATA       = "sata"        // AHCI on q35, IDE on pc (inbox drivers)
)

// Answer-file media.
const (
	MediaCD     = "cd"
	MediaFloppy = "floppy"
)

// OVMF and swtpm locations on Debian.
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// Secure Boot: the SMM build and VARS with Microsoft's keys enrolled
	// and Secure Boot on.
	OVMFCodeSecureBoot = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
	OVMFVarsSecureBoot = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// Config describes a VM.
type Config struct {
	// ISO is the stand-in install ISO; empty boots the disk alone.
	ISO string
	// AnswerFile, when set, is written as autounattend.xml to a CD
	// (AnswerMedia "cd", volume label WINBAKE) or a 1.44 MB floppy
	// ("floppy").
	AnswerFile  []byte
	AnswerMedia string
	// CDs are further ISOs (e.g. virtio-win drivers), attached after the
	// install ISO and the answer CD.
	CDs []string
	// Disk is the qcow2 disk; it is created with DiskSize (default 40G)
	// when it does not exist.
	Disk     string
	DiskSize string
	// DiskBus is BusVirtio (default), BusVirtioSCSI or BusSATA.
	DiskBus string
	// Discard attaches the disk as winbake does, passing the guest's
	// discards on to the qcow2 (discard=unmap,detect-zeroes=unmap).
	Discard bool
	// DiscardGranularity is the unmap granularity the virtio disk reports
	// (QEMU's discard_granularity); 0 keeps QEMU's default.
	DiscardGranularity int
	// Firmware is BIOS (default) or UEFI. Machine defaults to "pc" for BIOS
	// and "q35" for UEFI. UEFI VMs get a TPM 2.0 unless NoTPM.
	Firmware Firmware
	Machine  string
	NoTPM    bool
	// SecureBoot boots a UEFI VM with Secure Boot enforced (OVMF's SMM
	// build with Microsoft's keys; the machine gets smm=on).
	SecureBoot bool
	// NoKeyPress leaves a UEFI boot's "Press any key to boot from CD or
	// DVD" unanswered, so the firmware boots the next device. By default
	// the space bar is pressed (through QMP) the first time the prompt
	// shows, as a user (or winbake's boot_command) does; later prompts,
	// after Setup restarts, are left alone.
	NoKeyPress bool
	// NIC is the network device model (default virtio-net-pci).
	NIC string
	// MemoryMB defaults to 512.
	MemoryMB int
	// Dir is where the VM's files go (serial log, QMP socket, pidfile,
	// media, VARS, TPM state); default a new temporary directory, removed
	// by Close.
	Dir string
	// Logf receives progress lines (tests pass t.Logf).
	Logf func(format string, args ...any)
}

// VM is a running QEMU.
type VM struct {
	Config
	// SerialLog is the guest's COM1 output.
	SerialLog string
	// WinRMPort is the host port forwarded to the guest's 5985.
	WinRMPort int
	// Started is when QEMU was started.
	Started time.Time

	dir      string
	ownDir   bool
	qemu     *exec.Cmd
	swtpm    *exec.Cmd
	swtpmEnd chan struct{}
	qmpPath  string
	exited   chan struct{}
	exitErr  error
	closeMu  sync.Mutex
	closed   bool
	qemuArgs []string
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// AnswerCD writes an ISO labelled label holding files (name → content).
func AnswerCD(path, label string, files map[string][]byte) error {
	dir, err := os.MkdirTemp(filepath.Dir(path), "cd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return run("xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-J", "-R", "-o", path, dir)
}

// AnswerFloppy writes a 1.44 MB FAT floppy image holding files in its root.
func AnswerFloppy(path, label string, files map[string][]byte) error {
	_ = os.Remove(path)
	if err := run("mformat", "-C", "-f", "1440", "-v", label, "-i", path, "::"); err != nil {
		return err
	}
	for name, b := range files {
		tmp, err := os.CreateTemp(filepath.Dir(path), "fd-")
		if err != nil {
			return err
		}
		_, _ = tmp.Write(b)
		tmp.Close()
		err = run("mcopy", "-i", path, tmp.Name(), "::/"+name)
		os.Remove(tmp.Name())
		if err != nil {
			return err
		}
	}
	return nil
}

// Start starts QEMU (and swtpm for a UEFI VM with a TPM).
func Start(cfg Config) (vm *VM, err error) {
	if cfg.Firmware == "" {
		cfg.Firmware = BIOS
	}
	if cfg.Machine == "" {
		cfg.Machine = "pc"
		if cfg.Firmware == UEFI {
			cfg.Machine = "q35"
		}
	}
	if cfg.DiskBus == "" {
		cfg.DiskBus = BusVirtio
	}
	if cfg.DiskSize == "" {
		cfg.DiskSize = "40G"
	}
	if cfg.NIC == "" {
		cfg.NIC = "virtio-net-pci"
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 512
	}
	if cfg.AnswerMedia == "" {
		cfg.AnswerMedia = MediaCD
	}
	if cfg.Disk == "" {
		return nil, errors.New("standin: Config.Disk is required")
	}
	vm = &VM{Config: cfg, exited: make(chan struct{})}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "winbake-standin-vm-")
		if err != nil {
			return nil, err
		}
		vm.dir, vm.ownDir = d, true
	} else {
		vm.dir = cfg.Dir
		if err := os.MkdirAll(vm.dir, 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			vm.Close()
			vm = nil
		}
	}()
	vm.SerialLog = filepath.Join(vm.dir, "serial.log")
	vm.qmpPath = filepath.Join(vm.dir, "qmp.sock")
	if vm.WinRMPort, err = FreePort(); err != nil {
		return vm, err
	}
	if _, statErr := os.Stat(cfg.Disk); errors.Is(statErr, os.ErrNotExist) {
		if err = run("qemu-img", "create", "-q", "-f", "qcow2", cfg.Disk, cfg.DiskSize); err != nil {
			return vm, err
		}
	}

	args := []string{
		"-name", "winbake-standin", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", fmt.Sprint(cfg.MemoryMB),
		"-machine", cfg.Machine, "-nographic", "-nodefaults",
		"-serial", "file:" + vm.SerialLog,
		"-qmp", "unix:" + vm.qmpPath + ",server=on,wait=off",
		"-pidfile", filepath.Join(vm.dir, "qemu.pid"),
	}
	if cfg.Firmware == UEFI {
		code, varsTemplate := OVMFCode, OVMFVars
		if cfg.SecureBoot {
			code, varsTemplate = OVMFCodeSecureBoot, OVMFVarsSecureBoot
			args[slices.Index(args, "-machine")+1] += ",smm=on"
			args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		vars := filepath.Join(vm.dir, "OVMF_VARS_4M.fd")
		b, err := os.ReadFile(varsTemplate)
		if err != nil {
			return vm, fmt.Errorf("OVMF (Debian package ovmf): %w", err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			return vm, err
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
		if !cfg.NoTPM {
			if err := vm.startTPM(); err != nil {
				return vm, err
			}
			args = append(args,
				"-chardev", "socket,id=chrtpm,path="+filepath.Join(vm.dir, "tpm", "swtpm.sock"),
				"-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0")
		}
	}

	// IDE/AHCI slots: pc has two IDE buses with two units each, q35 six
	// AHCI ports.
	type slot struct{ bus, unit string }
	var slots []slot
	if cfg.Machine == "pc" || strings.HasPrefix(cfg.Machine, "pc-i440fx") {
		slots = []slot{{"ide.0", "0"}, {"ide.0", "1"}, {"ide.1", "0"}, {"ide.1", "1"}}
	} else {
		for i := 0; i < 6; i++ {
			slots = append(slots, slot{fmt.Sprintf("ide.%d", i), ""})
		}
	}
	next := 0
	boot := 0
	attach := func(kind, id, file, format string, readonly bool) error {
		if next >= len(slots) {
			return fmt.Errorf("standin: no IDE/AHCI slot left for %s", file)
		}
		s := slots[next]
		next++
		drive := fmt.Sprintf("if=none,id=%s,file=%s,format=%s", id, file, format)
		if readonly {
			drive += ",readonly=on"
		}
		if kind == "ide-hd" && cfg.Discard {
			drive += ",discard=unmap,detect-zeroes=unmap"
		}
		if kind == "ide-cd" {
			drive += ",media=cdrom"
		}
		dev := fmt.Sprintf("%s,drive=%s,bus=%s,bootindex=%d", kind, id, s.bus, boot)
		if s.unit != "" {
			dev += ",unit=" + s.unit
		}
		boot++
		args = append(args, "-drive", drive, "-device", dev)
		return nil
	}
	if cfg.ISO != "" {
		if err := attach("ide-cd", "installcd", cfg.ISO, "raw", true); err != nil {
			return vm, err
		}
	}
	if cfg.AnswerFile != nil {
		files := map[string][]byte{"autounattend.xml": cfg.AnswerFile}
		if cfg.AnswerMedia == MediaFloppy {
			img := filepath.Join(vm.dir, "answer.flp")
			if err := AnswerFloppy(img, "WINBAKE", files); err != nil {
				return vm, err
			}
			if cfg.Machine == "pc" {
				args = append(args, "-drive", "if=floppy,index=0,format=raw,file="+img)
			} else {
				args = append(args, "-drive", "if=none,id=fd0,format=raw,file="+img, "-device", "isa-fdc,driveA=fd0")
			}
		} else {
			iso := filepath.Join(vm.dir, "answer.iso")
			if err := AnswerCD(iso, "WINBAKE", files); err != nil {
				return vm, err
			}
			if err := attach("ide-cd", "answercd", iso, "raw", true); err != nil {
				return vm, err
			}
		}
	}
	for i, cd := range cfg.CDs {
		if err := attach("ide-cd", fmt.Sprintf("cd%d", i), cd, "raw", true); err != nil {
			return vm, err
		}
	}
	diskDrive, granularity := "if=none,id=disk0,format=qcow2,file="+cfg.Disk, ""
	if cfg.Discard {
		diskDrive += ",discard=unmap,detect-zeroes=unmap"
	}
	if cfg.DiscardGranularity != 0 {
		granularity = fmt.Sprintf(",discard_granularity=%d", cfg.DiscardGranularity)
	}
	switch cfg.DiskBus {
	case BusVirtio:
		args = append(args, "-drive", diskDrive,
			"-device", fmt.Sprintf("virtio-blk-pci,drive=disk0%s,bootindex=%d", granularity, boot))
	case BusVirtioSCSI:
		args = append(args, "-device", "virtio-scsi-pci,id=scsi0",
			"-drive", diskDrive,
			"-device", fmt.Sprintf("scsi-hd,drive=disk0,bus=scsi0.0%s,bootindex=%d", granularity, boot))
	case BusSATA:
		if cfg.DiscardGranularity != 0 {
			return vm, errors.New("standin: QEMU's IDE device takes no discard_granularity but 512")
		}
		if err := attach("ide-hd", "disk0", cfg.Disk, "qcow2", false); err != nil {
			return vm, err
		}
	default:
		return vm, fmt.Errorf("standin: unknown disk bus %q", cfg.DiskBus)
	}
	args = append(args,
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:5985", vm.WinRMPort),
		// No option ROM: iPXE would add seconds to every boot under TCG.
		"-device", cfg.NIC+",netdev=n0,romfile=")
	vm.qemuArgs = args

	vm.qemu = exec.Command("qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	vm.qemu.Stderr = &stderr
	vm.qemu.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	vm.Started = time.Now()
	if err := vm.qemu.Start(); err != nil {
		return vm, fmt.Errorf("qemu-system-x86_64 (Debian package qemu-system-x86): %w", err)
	}
	cfg.logf("standin: QEMU started (%s, %s, disk on %s, answer file on %s), WinRM forwarded to 127.0.0.1:%d",
		cfg.Firmware, cfg.Machine, cfg.DiskBus, map[bool]string{true: cfg.AnswerMedia, false: "nothing"}[cfg.AnswerFile != nil], vm.WinRMPort)
	go func() {
		err := vm.qemu.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		vm.exitErr = err
		close(vm.exited)
	}()
	if cfg.Firmware == UEFI && cfg.ISO != "" && !cfg.NoKeyPress {
		go vm.pressKeyForCD()
	}
	return vm, nil
}

// BootFromCDPrompt is what the stand-in ISO shows under UEFI, as Windows
// media do.
const BootFromCDPrompt = "Press any key to boot from CD or DVD"

// pressKeyForCD presses the space bar once the first prompt shows.
func (vm *VM) pressKeyForCD() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-vm.exited
		cancel()
	}()
	if _, _, _, err := vm.WaitLine(ctx, 0, BootFromCDPrompt); err != nil {
		return
	}
	keys := map[string]any{"keys": []map[string]string{{"type": "qcode", "data": "spc"}}}
	if err := vm.qmpArgs("send-key", keys); err != nil {
		vm.logf("standin: pressing a key for the CD prompt: %v", err)
		return
	}
	vm.logf("standin: pressed the space bar at %q after %s", BootFromCDPrompt, time.Since(vm.Started).Round(100*time.Millisecond))
}

func (vm *VM) startTPM() error {
	dir := filepath.Join(vm.dir, "tpm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sock := filepath.Join(dir, "swtpm.sock")
	vm.swtpm = exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--ctrl", "type=unixio,path="+sock, "--flags", "startup-clear")
	vm.swtpm.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := vm.swtpm.Start(); err != nil {
		return fmt.Errorf("swtpm (Debian package swtpm): %w", err)
	}
	vm.swtpmEnd = make(chan struct{})
	go func() { _ = vm.swtpm.Wait(); close(vm.swtpmEnd) }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("swtpm did not create its socket")
}

// Args are QEMU's arguments, for logs.
func (vm *VM) Args() []string { return vm.qemuArgs }

// Dir is the VM's directory.
func (vm *VM) Dir() string { return vm.dir }

// Exited is closed when QEMU has exited.
func (vm *VM) Exited() <-chan struct{} { return vm.exited }

// ExitErr is QEMU's exit error once Exited is closed (nil for status 0).
func (vm *VM) ExitErr() error { return vm.exitErr }

// Serial returns the serial log so far, with carriage returns removed.
func (vm *VM) Serial() string {
	b, _ := os.ReadFile(vm.SerialLog)
	return strings.ReplaceAll(string(b), "\r", "")
}

// Tail returns the last n lines of the serial log.
func (vm *VM) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(vm.Serial(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ErrExited is returned by WaitLine when QEMU exits first.
var ErrExited = errors.New("QEMU exited")

// WaitLine waits until a serial log line at or after line index from
// contains any of substrs. It returns the line, its index and the time since
// QEMU started. It fails when ctx ends or QEMU exits first.
func (vm *VM) WaitLine(ctx context.Context, from int, substrs ...string) (string, int, time.Duration, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		exited := false
		select {
		case <-vm.exited:
			exited = true
		default:
		}
		lines := strings.Split(vm.Serial(), "\n")
		for i := from; i < len(lines); i++ {
			// The last line may still be incomplete unless QEMU is gone.
			if i == len(lines)-1 && !exited {
				break
			}
			for _, s := range substrs {
				if strings.Contains(lines[i], s) {
					return lines[i], i, time.Since(vm.Started), nil
				}
			}
		}
		if exited {
			return "", 0, time.Since(vm.Started), fmt.Errorf("%w (%v) before a line with %q; serial log tail:\n%s", ErrExited, vm.exitErr, substrs, vm.Tail(25))
		}
		select {
		case <-ctx.Done():
			return "", 0, time.Since(vm.Started), fmt.Errorf("%w waiting for a line with %q; serial log tail:\n%s", ctx.Err(), substrs, vm.Tail(25))
		case <-vm.exited:
		case <-tick.C:
		}
	}
}

// Wait waits for QEMU to exit.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.exited:
		return vm.exitErr
	case <-ctx.Done():
		return fmt.Errorf("%w waiting for QEMU to exit; serial log tail:\n%s", ctx.Err(), vm.Tail(25))
	}
}

// qmp sends one command over the QMP socket.
func (vm *VM) qmp(command string) error { return vm.qmpArgs(command, nil) }

// qmpArgs sends one command with arguments over the QMP socket.
func (vm *VM) qmpArgs(command string, arguments any) error {
	conn, err := net.DialTimeout("unix", vm.qmpPath, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return err
	}
	for _, c := range []string{"qmp_capabilities", command} {
		req := map[string]any{"execute": c}
		if c == command && arguments != nil {
			req["arguments"] = arguments
		}
		b, _ := json.Marshal(req)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return err
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				if c == "quit" && errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if bytes.Contains(line, []byte(`"return"`)) || bytes.Contains(line, []byte(`"error"`)) {
				break
			}
		}
	}
	return nil
}

// Quit stops QEMU (QMP quit, then SIGTERM, then SIGKILL) and waits for it.
func (vm *VM) Quit() {
	if vm.qemu == nil || vm.qemu.Process == nil {
		return
	}
	select {
	case <-vm.exited:
		return
	default:
	}
	_ = vm.qmp("quit")
	select {
	case <-vm.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = vm.qemu.Process.Signal(syscall.SIGTERM)
	select {
	case <-vm.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = vm.qemu.Process.Kill()
	<-vm.exited
}

// Close stops QEMU and swtpm and removes the VM's directory when Start
// created it. The disk (Config.Disk) stays.
func (vm *VM) Close() {
	vm.closeMu.Lock()
	defer vm.closeMu.Unlock()
	if vm.closed {
		return
	}
	vm.closed = true
	vm.Quit()
	if vm.swtpm != nil && vm.swtpm.Process != nil {
		// swtpm exits when QEMU disconnects; make sure.
		select {
		case <-vm.swtpmEnd:
		case <-time.After(time.Second):
			_ = vm.swtpm.Process.Kill()
			<-vm.swtpmEnd
		}
	}
	if vm.ownDir {
		_ = os.RemoveAll(vm.dir)
	}
}
