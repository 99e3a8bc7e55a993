package qemuvm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Driver is everything winbake's steps ask of the host: QEMU, its QMP
// monitor, swtpm and qemu-img. The methods are deliberately specific (not
// "run this command") so that steps stay free of command lines and exit
// codes, and so that DriverMock can stand in for the host in step tests.
// One Driver runs at most one VM and one swtpm at a time.
type Driver interface {
	// StartVM starts QEMU in the background with args and returns once the
	// process runs. The VM's stderr is kept for the error WaitVM returns.
	StartVM(args []QemuArg) error
	// QueryStatus returns the QMP run state ("running", "shutdown",
	// "paused", ...).
	QueryStatus(ctx context.Context) (string, error)
	// SystemPowerdown sends an ACPI power button press.
	SystemPowerdown(ctx context.Context) error
	// VNCAddress returns host:port of the VM's VNC server.
	VNCAddress(ctx context.Context) (string, error)
	// SendKeys presses and releases the keys together, each a QMP qcode
	// such as "spc", "ret" or "a".
	SendKeys(ctx context.Context, qcodes ...string) error
	// WaitVM waits until QEMU exits (nil for exit status 0) or ctx ends.
	WaitVM(ctx context.Context) error
	// StopVM kills QEMU if it still runs and waits for it; a no-op when no
	// VM runs.
	StopVM() error
	// StartTPM starts swtpm (TPM 2.0) with its state in stateDir and
	// returns the control socket QEMU connects to.
	StartTPM(stateDir string) (socket string, err error)
	// StopTPM stops swtpm if it still runs; a no-op otherwise.
	StopTPM() error
	// CreateDisk creates a qcow2 disk of sizeMB MiB.
	CreateDisk(path string, sizeMB uint64) error
	// ConvertDisk copies src to dst as qcow2, dropping unused clusters.
	ConvertDisk(src, dst string) error
}

// QemuDriver is the Driver for the local host.
type QemuDriver struct {
	// QemuPath, QemuImgPath and SwtpmPath default to the programs on PATH.
	QemuPath, QemuImgPath, SwtpmPath string

	mu       sync.Mutex
	qmpPath  string
	vm       *exec.Cmd
	vmDone   chan struct{}
	vmErr    error
	vmStderr bytes.Buffer
	tpm      *exec.Cmd
	tpmDone  chan struct{}
}

var _ Driver = (*QemuDriver)(nil)

func orDefault(path, name string) string {
	if path != "" {
		return path
	}
	return name
}

func (d *QemuDriver) StartVM(args []QemuArg) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.vm != nil {
		return errors.New("a VM is already running")
	}
	for i, a := range args {
		if a.Flag == "-qmp" && i < len(args) {
			if v, ok := cutPrefixSuffix(a.Value, "unix:", ","); ok {
				d.qmpPath = v
			}
		}
	}
	cmd := exec.Command(orDefault(d.QemuPath, "qemu-system-x86_64"), Flatten(args)...)
	d.vmStderr.Reset()
	cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.vmStderr}
	// QEMU must not outlive the plugin, even when the plugin is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting QEMU (Debian package qemu-system-x86): %w", err)
	}
	d.vm, d.vmDone = cmd, make(chan struct{})
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		if err != nil {
			d.vmErr = fmt.Errorf("QEMU: %w", err)
			if stderr := bytes.TrimSpace(d.vmStderr.Bytes()); len(stderr) > 0 {
				d.vmErr = fmt.Errorf("QEMU: %w: %s", err, stderr)
			}
		}
		d.mu.Unlock()
		close(d.vmDone)
	}()
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func cutPrefixSuffix(s, prefix, sep string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	s = s[len(prefix):]
	if i := bytes.IndexByte([]byte(s), sep[0]); i >= 0 {
		s = s[:i]
	}
	return s, true
}

func (d *QemuDriver) WaitVM(ctx context.Context) error {
	d.mu.Lock()
	done := d.vmDone
	d.mu.Unlock()
	if done == nil {
		return errors.New("no VM was started")
	}
	select {
	case <-done:
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.vmErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *QemuDriver) StopVM() error {
	d.mu.Lock()
	cmd, done := d.vm, d.vmDone
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
	default:
		_ = cmd.Process.Kill()
		<-done
	}
	d.mu.Lock()
	d.vm, d.vmDone = nil, nil
	d.mu.Unlock()
	return nil
}

// qmp runs one QMP command on a fresh connection and returns its result.
func (d *QemuDriver) qmp(ctx context.Context, command string, arguments any) (json.RawMessage, error) {
	d.mu.Lock()
	path := d.qmpPath
	d.mu.Unlock()
	if path == "" {
		return nil, errors.New("QMP: the VM has no QMP socket")
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("QMP: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	r := bufio.NewReader(conn)
	type reply struct {
		QMP    json.RawMessage `json:"QMP"`
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
		Event string `json:"event"`
	}
	read := func() (reply, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return reply{}, fmt.Errorf("QMP: %w", err)
			}
			var rep reply
			if err := json.Unmarshal(line, &rep); err != nil {
				return reply{}, fmt.Errorf("QMP: %w", err)
			}
			if rep.Event == "" {
				return rep, nil
			}
		}
	}
	call := func(cmd string, args any) (json.RawMessage, error) {
		req := map[string]any{"execute": cmd}
		if args != nil {
			req["arguments"] = args
		}
		b, _ := json.Marshal(req)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return nil, fmt.Errorf("QMP: %w", err)
		}
		rep, err := read()
		if err != nil {
			return nil, err
		}
		if rep.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", cmd, rep.Error.Class, rep.Error.Desc)
		}
		return rep.Return, nil
	}
	if _, err := read(); err != nil { // greeting
		return nil, err
	}
	if _, err := call("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return call(command, arguments)
}

func (d *QemuDriver) QueryStatus(ctx context.Context) (string, error) {
	raw, err := d.qmp(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("QMP query-status: %w", err)
	}
	return st.Status, nil
}

func (d *QemuDriver) VNCAddress(ctx context.Context) (string, error) {
	raw, err := d.qmp(ctx, "query-vnc", nil)
	if err != nil {
		return "", err
	}
	var vnc struct {
		Enabled bool   `json:"enabled"`
		Host    string `json:"host"`
		Service string `json:"service"`
	}
	if err := json.Unmarshal(raw, &vnc); err != nil {
		return "", fmt.Errorf("QMP query-vnc: %w", err)
	}
	if !vnc.Enabled {
		return "", errors.New("QMP query-vnc: the VM has no VNC server")
	}
	return net.JoinHostPort(vnc.Host, vnc.Service), nil
}

func (d *QemuDriver) SystemPowerdown(ctx context.Context) error {
	_, err := d.qmp(ctx, "system_powerdown", nil)
	return err
}

func (d *QemuDriver) SendKeys(ctx context.Context, qcodes ...string) error {
	keys := make([]map[string]string, len(qcodes))
	for i, q := range qcodes {
		keys[i] = map[string]string{"type": "qcode", "data": q}
	}
	_, err := d.qmp(ctx, "send-key", map[string]any{"keys": keys})
	return err
}

func (d *QemuDriver) StartTPM(stateDir string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tpm != nil {
		return "", errors.New("swtpm is already running")
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", err
	}
	sock := filepath.Join(stateDir, "swtpm.sock")
	_ = os.Remove(sock)
	// Not --daemon: a daemonised swtpm lingers; as a child it is reaped and
	// exits by itself when QEMU disconnects.
	cmd := exec.Command(orDefault(d.SwtpmPath, "swtpm"), "socket", "--tpm2",
		"--tpmstate", "dir="+stateDir, "--ctrl", "type=unixio,path="+sock, "--flags", "startup-clear")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting swtpm (Debian package swtpm): %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	for range 100 {
		if _, err := os.Stat(sock); err == nil {
			d.tpm, d.tpmDone = cmd, done
			return sock, nil
		}
		select {
		case <-done:
			return "", errors.New("swtpm exited before creating its socket")
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	<-done
	return "", errors.New("swtpm did not create its socket within 5s")
}

func (d *QemuDriver) StopTPM() error {
	d.mu.Lock()
	cmd, done := d.tpm, d.tpmDone
	d.tpm, d.tpmDone = nil, nil
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

func (d *QemuDriver) CreateDisk(path string, sizeMB uint64) error {
	out, err := exec.Command(orDefault(d.QemuImgPath, "qemu-img"), "create", "-q", "-f", "qcow2", path, fmt.Sprintf("%dM", sizeMB)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func (d *QemuDriver) ConvertDisk(src, dst string) error {
	out, err := exec.Command(orDefault(d.QemuImgPath, "qemu-img"), "convert", "-O", "qcow2", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img convert: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// OverlayDriver is implemented by Drivers that can create a qcow2 overlay
// on a backing disk (QemuDriver, DriverMock). It is separate from Driver
// so that Drivers written against the original interface keep compiling.
type OverlayDriver interface {
	// CreateOverlay creates a qcow2 disk at path whose backing file is
	// the qcow2 disk backing (an absolute path), which is never written.
	CreateOverlay(path, backing string) error
}

var _ OverlayDriver = (*QemuDriver)(nil)

func (d *QemuDriver) CreateOverlay(path, backing string) error {
	out, err := exec.Command(orDefault(d.QemuImgPath, "qemu-img"), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create (overlay): %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
