//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// processesMentioning lists the running processes whose command line
// contains every one of words, as "pid: command line".
func processesMentioning(words ...string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		line := strings.ReplaceAll(string(cmdline), "\x00", " ")
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			found = append(found, e.Name()+": "+line)
		}
	}
	return found
}

// buildMarker names the environment variable that marks the processes of
// one build.
const buildMarker = "WINBAKE_E2E_BUILD"

// plugins lists the build's plugin processes still running.
func (b *interruptibleBuild) plugins() []string {
	return processesOfBuild(b.marker, installed.pluginPath)
}

// processesOfBuild lists the processes whose environment holds marker
// and whose command line mentions every word.
func processesOfBuild(marker string, words ...string) []string {
	var found []string
	for _, p := range processesMentioning(words...) {
		pid, _, _ := strings.Cut(p, ":")
		env, err := os.ReadFile(filepath.Join("/proc", pid, "environ"))
		if err == nil && slices.Contains(strings.Split(string(env), "\x00"), marker) {
			found = append(found, p)
		}
	}
	return found
}

// leftRunning returns what find lists after an interrupted build: cleanup
// finished before packer exited, but processes get 5 s to be reaped.
func leftRunning(find func() []string) []string {
	var left []string
	for range 20 {
		if left = find(); len(left) == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return left
}

// interruptibleBuild is a packer build run in its own process group, so
// the test can send SIGINT as a terminal's Ctrl-C does: to the whole
// foreground group (packer's outer panicwrap process ignores SIGINT and
// relies on that).
type interruptibleBuild struct {
	cmd *exec.Cmd
	// marker is in the environment of every process of the build (packer,
	// its plugins, QEMU, swtpm), so leftovers are found by it and not
	// confused with the processes of builds running beside it.
	marker string
	log    testio.LockedBuffer
	exited chan error
	ended  bool
}

// startInterruptible starts cmd; the build is killed if the test ends
// before it does.
func startInterruptible(t *testing.T, cmd *exec.Cmd) *interruptibleBuild {
	t.Helper()
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	b := &interruptibleBuild{cmd: cmd, exited: make(chan error, 1), marker: buildMarker + "=" + hex.EncodeToString(id)}
	if cmd.Env == nil {
		cmd.Env = installed.environ()
	}
	cmd.Env = append(cmd.Env, b.marker)
	cmd.Stdout, cmd.Stderr = &b.log, &b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if !b.ended {
			_ = cmd.Process.Kill()
			<-b.exited //nolint:errcheck // only the end matters here
		}
	})
	return b
}

// waitFor polls ready for up to 5 minutes; the test fails when packer ends
// first or ready never holds.
func (b *interruptibleBuild) waitFor(t *testing.T, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !ready() {
		select {
		case err := <-b.exited:
			b.ended = true
			t.Fatalf("packer ended before %s: %v\n%s", what, err, b.log.String())
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 minutes for %s:\n%s", what, b.log.String())
		}
	}
}

// interrupt sends SIGINT to the build's process group and returns how
// packer exited; it fails the test when packer still runs 3 minutes later.
func (b *interruptibleBuild) interrupt(t *testing.T) error {
	t.Helper()
	if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.exited:
		b.ended = true
		return err
	case <-time.After(3 * time.Minute):
		t.Fatalf("packer still runs 3 minutes after SIGINT:\n%s", b.log.String())
		return nil
	}
}

// Ctrl-C while the guest boots (SIGINT to packer's process group, as a
// terminal sends it): Packer cancels the build through the plugin,
// every step cleans up, and nothing of the build is left: no QEMU, no swtpm,
// no plugin process, no temporary file, no output directory.
func TestQemuInterruptLeavesNothing(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	out := filepath.Join(t.TempDir(), "out")
	tmp := t.TempDir()

	cmd := exec.Command(installed.packer, "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "firmware=uefi", "-var", "tpm=true", filepath.Join("testdata", "standin.pkr.hcl"))
	// The plugin's temporary files (the answer-file CD) go to this TMPDIR.
	cmd.Env = append(installed.environ(), "TMPDIR="+tmp)
	b := startInterruptible(t, cmd)

	// Interrupt once the guest is booting: QEMU and swtpm both run and the
	// serial console shows the firmware or the boot loader at work.
	serial := filepath.Join(out, "serial.log")
	b.waitFor(t, "the guest to boot", func() bool {
		console, err := os.ReadFile(serial)
		return err == nil && len(console) > 0 && len(processesMentioning("qemu-system-x86_64", out)) > 0 &&
			len(processesMentioning("swtpm", out)) > 0
	})
	err := b.interrupt(t)
	log := &b.log
	if err == nil {
		t.Errorf("packer exited 0 after SIGINT:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "Build 'winbake-qemu.standin' errored") &&
		!strings.Contains(log.String(), "cancelled") {
		t.Errorf("packer's output does not report the cancelled build:\n%s", log.String())
	}

	for _, p := range leftRunning(func() []string {
		left := append(processesMentioning("qemu-system-x86_64", out), processesMentioning("swtpm", out)...)
		return append(left, b.plugins()...)
	}) {
		t.Errorf("still running after the interrupted build: %s", p)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(out)
		t.Errorf("the output directory %s is left behind (%d entries)", out, len(entries))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("temporary files left in TMPDIR: %s", strings.Join(names, ", "))
	}
}

// A wrong iso_checksum fails in the download step, before anything is
// written or booted.
func TestQemuBadChecksumFailsBeforeQEMU(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	out := filepath.Join(t.TempDir(), "out")
	wrong := "sha256:" + strings.Repeat("0", 64)
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "iso_checksum="+wrong, filepath.Join("testdata", "standin-checksum.pkr.hcl"))
	if err == nil {
		t.Fatalf("build succeeded with a wrong iso_checksum:\n%s", log)
	}
	if !strings.Contains(strings.ToLower(log), "checksum") || !strings.Contains(log, strings.Repeat("0", 64)) {
		t.Errorf("the error does not name the checksum that failed:\n%s", log)
	}
	if strings.Contains(log, "Starting QEMU") || strings.Contains(log, "Writing autounattend.xml") {
		t.Errorf("the build went on past the failed checksum:\n%s", log)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory created")
	}
	if p := processesMentioning("qemu-system-x86_64", out); len(p) > 0 {
		t.Errorf("QEMU runs: %v", p)
	}
}
