//go:build e2e

package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// waitExit waits for packer to end by itself and fails the test when it
// still runs after d.
func (b *interruptibleBuild) waitExit(t *testing.T, d time.Duration, why string) error {
	t.Helper()
	select {
	case err := <-b.exited:
		b.ended = true
		return err
	case <-time.After(d):
		t.Fatalf("packer still runs %s after %s:\n%s", d, why, b.log.String())
		return nil
	}
}

// leftovers lists what an ended build left: QEMU, swtpm or plugin
// processes, the output directory, files in TMPDIR and port lock files in
// PACKER_CACHE_DIR.
func leftovers(b *interruptibleBuild, out, tmp, cache string) []string {
	var left []string
	for _, p := range leftRunning(func() []string {
		found := append(processesMentioning("qemu-system-x86_64", out), processesMentioning("swtpm", out)...)
		return append(found, b.plugins()...)
	}) {
		left = append(left, "still running: "+p)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		left = append(left, "the output directory "+out)
	}
	for _, dir := range []string{tmp, filepath.Join(cache, "port")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			left = append(left, "file "+filepath.Join(dir, e.Name()))
		}
	}
	return left
}

// QEMU killed five seconds into the boot (the OOM killer, a crash): the
// build fails at once — not when winrm_timeout (30m here) runs out — with
// QEMU's exit status and the last serial console lines, and leaves
// nothing.
func TestQemuKilledFailsAtOnce(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	out := filepath.Join(t.TempDir(), "out")
	tmp, cache := t.TempDir(), t.TempDir()
	cmd := exec.Command(installed.packer, "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "winrm_timeout=30m", filepath.Join("testdata", "standin.pkr.hcl"))
	cmd.Env = append(installed.environ(), "TMPDIR="+tmp, "PACKER_CACHE_DIR="+cache)
	b := startInterruptible(t, cmd)

	var qemuPID int
	b.waitFor(t, "QEMU to boot the stand-in", func() bool {
		console, err := os.ReadFile(filepath.Join(out, "serial.log"))
		procs := processesMentioning("qemu-system-x86_64", out)
		if err != nil || len(console) == 0 || len(procs) == 0 {
			return false
		}
		qemuPID, _ = strconv.Atoi(strings.SplitN(procs[0], ":", 2)[0])
		return true
	})
	time.Sleep(5 * time.Second)
	if err := syscall.Kill(qemuPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := b.waitExit(t, 3*time.Minute, "QEMU was killed")
	log := b.log.String()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("packer ended with %v after QEMU was killed:\n%s", err, log)
	}
	if i := strings.Index(log, "the VM stopped"); i >= 0 {
		t.Logf("packer said: %s", log[i:min(len(log), i+600)])
	}
	for _, want := range []string{"QEMU exited: signal: killed", "last serial console lines"} {
		if !strings.Contains(log, want) {
			t.Errorf("packer's output does not say %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Timeout waiting for WinRM") {
		t.Errorf("the build blamed WinRM:\n%s", log)
	}
	for _, l := range leftovers(b, out, tmp, cache) {
		t.Errorf("left after the build: %s", l)
	}
}

// Ctrl-C while winbake-updates waits for an install and the guest has
// stopped answering (QEMU frozen with SIGSTOP: the install's Receive gets
// no answer, as when the connection goes dark): on SIGINT to packer's
// process group, as a terminal sends it, the provisioner returns although
// Packer's RPC gives its communicator no context, the builder aborts the
// WinRM request in flight and kills the VM, and nothing of the build is
// left.
func TestUpdatesInterruptLeavesNothing(t *testing.T) {
	t.Parallel()
	goldenDisk := filepath.Join(golden(t, goldenBIOS), "standin.qcow2")
	dir := t.TempDir()
	long := testguest.PackageFile{Name: "windows10.0-kb5000010-x64.cab", KB: "5000010", PackageName: "Package_for_KB5000010", Version: "10.0.1.0",
		Spec: winsim.PackageSpec{Result: "installs", InstallTime: "1h"}}
	// The template takes .msu and .cab files; this one goes in at once.
	quick := testguest.PackageFile{Name: "windows10.0-kb5000012-x64.msu", KB: "5000012", PackageName: "Package_for_KB5000012", Version: "10.0.1.0",
		Spec: winsim.PackageSpec{Result: "installs"}}
	pkgDir := writePackages(t, filepath.Join(dir, "packages"), long, quick)
	out := filepath.Join(dir, "out")
	tmp, cache := t.TempDir(), t.TempDir()
	cmd := exec.Command(installed.packer, "build", "-var", "golden_disk="+goldenDisk, "-var", "winrm_password="+goldenPassword, "-var", "output_dir="+out,
		"-var", "packages_dir="+pkgDir, "-var", "manifest_out="+filepath.Join(dir, "updates.json"), filepath.Join("testdata", "updates.pkr.hcl"))
	cmd.Env = append(installed.environ(), "TMPDIR="+tmp, "PACKER_CACHE_DIR="+cache)
	b := startInterruptible(t, cmd)
	b.waitFor(t, "winbake-updates to start the install", func() bool {
		return strings.Contains(b.log.String(), "Installing "+long.Name)
	})
	time.Sleep(5 * time.Second)
	procs := processesMentioning("qemu-system-x86_64", out)
	if len(procs) != 1 {
		t.Fatalf("QEMU processes: %v", procs)
	}
	qemuPID, _ := strconv.Atoi(strings.SplitN(procs[0], ":", 2)[0])
	if err := syscall.Kill(qemuPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	err := b.interrupt(t)
	log := b.log.String()
	if err == nil {
		t.Errorf("packer exited 0 after SIGINT:\n%s", log)
	}
	if strings.Contains(log, long.Name+": installed") {
		t.Errorf("the install finished before the interrupt; the test did not interrupt it:\n%s", log)
	}
	for _, l := range leftovers(b, out, tmp, cache) {
		t.Errorf("left after the interrupted build: %s", l)
	}
}
