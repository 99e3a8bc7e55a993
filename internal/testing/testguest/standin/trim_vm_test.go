package standin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"
	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/setup"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// allocatedClusters is how many clusters the qcow2 disk holds (qemu-img
// check), of clusterSize bytes.
func allocatedClusters(t *testing.T, disk string) (n, clusterSize int64) {
	t.Helper()
	out, err := exec.Command("qemu-img", "check", "--output=json", disk).Output()
	if err != nil {
		t.Fatalf("qemu-img check %s: %v", disk, err)
	}
	var c struct {
		Allocated int64 `json:"allocated-clusters"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("qemu-img", "info", "--output=json", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ClusterSize int64 `json:"cluster-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return c.Allocated, info.ClusterSize
}

// retrim runs Optimize-Volume -ReTrim on C: over WinRM, as winbake-sysprep
// does, and returns its exit code and output.
func retrim(t *testing.T, vm *VM, user, password string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, code, err := winrmClient(t, vm, user, password).RunCmdWithContext(ctx,
		winrm.Powershell(`$ErrorActionPreference = 'Stop'; Optimize-Volume -DriveLetter C -ReTrim -Verbose`))
	if err != nil {
		t.Fatalf("Optimize-Volume over WinRM: %v", err)
	}
	return code, out, errOut
}

// shutDown powers the guest off over WinRM and waits for QEMU to exit.
func shutDown(t *testing.T, vm *VM, user, password string, from int) {
	t.Helper()
	powerCommand(t, vm, user, password, "shutdown /s /t 0")
	wait(t, vm, 60*time.Second, from, setup.PowerOffLine)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("QEMU after shutdown /s: %v", err)
	}
	vm.Close()
}

// TestReTrimFollowsTheDisksGranularity: Optimize-Volume -ReTrim on the
// stand-in does what Windows does with the disk the VM gives it. A file
// written (and on the disk after a shutdown) and then deleted leaves its
// clusters allocated in the qcow2 (the stand-in, like a Windows whose
// delete notifications do not reach the disk, frees them only on a
// retrim). On virtio-blk and virtio-scsi with QEMU's
// default unmap granularity (512 bytes and 4 KiB) Windows refuses the
// retrim with 0x80070001 and the qcow2 keeps every cluster; with the
// 8 KiB winbake sets, the free space is discarded and the qcow2 shrinks.
func TestReTrimFollowsTheDisksGranularity(t *testing.T) {
	iso := isoPath(t)
	s := settings(unattend.FirmwareBIOS)
	s.VirtioFolder = "2k22"
	const user = "Administrator"
	disk := filepath.Join(t.TempDir(), "disk.qcow2")

	// Install on virtio-blk with QEMU's default granularity and write
	// 2 MiB over WinRM, as Packer uploads a file; the shutdown writes it
	// to the disk.
	vm := start(t, Config{ISO: iso, AnswerFile: render(t, s), CDs: []string{virtioCD(t)}, Disk: disk, Firmware: BIOS, Discard: true})
	_, i, d := wait(t, vm, biosStage, 0, setup.WinRMListeningPrefix)
	record(t, "installed, WinRM listening", d)
	comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: "127.0.0.1", Port: vm.WinRMPort, Username: user, Password: s.Password, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 2<<20)
	if _, err := rand.Read(junk); err != nil {
		t.Fatal(err)
	}
	uploadStart := time.Now()
	if err := comm.Upload(`C:\Windows\Temp\junk.bin`, bytes.NewReader(junk), nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	record(t, "2 MiB uploaded over WinRM", time.Since(uploadStart))
	code, out, errOut := retrim(t, vm, user, s.Password)
	if code != 1 || !strings.Contains(errOut, "Incorrect function. (0x80070001)") || strings.Contains(out, "Retrim:  100% complete") {
		t.Errorf("retrim of virtio-blk at QEMU's default granularity: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if line, _, _ := wait(t, vm, 30*time.Second, i, "Optimize-Volume -ReTrim C: refused"); !strings.Contains(line, "virtio-blk disk reports an unmap granularity of 512 bytes") {
		t.Errorf("refusal logged as %q", line)
	}
	shutDown(t, vm, user, s.Password, i)
	written, clusterSize := allocatedClusters(t, disk)
	t.Logf("after writing 2 MiB and a refused retrim on virtio-blk (512): %d clusters of %d bytes", written, clusterSize)

	// virtio-scsi at QEMU's default granularity: the file is deleted, and
	// the retrim is refused too, so its clusters stay allocated.
	vm = start(t, Config{Disk: disk, DiskBus: BusVirtioSCSI, Firmware: BIOS, Discard: true})
	_, i, _ = wait(t, vm, biosStage, 0, setup.WinRMListeningPrefix)
	winrmRun(t, winrmClient(t, vm, user, s.Password), winrm.Powershell(`Remove-Item -LiteralPath C:\Windows\Temp\junk.bin -Force`))
	code, _, errOut = retrim(t, vm, user, s.Password)
	if code != 1 || !strings.Contains(errOut, "0x80070001") {
		t.Errorf("retrim of virtio-scsi at QEMU's default granularity: exit %d, stderr %q", code, errOut)
	}
	if line, _, _ := wait(t, vm, 30*time.Second, i, "Optimize-Volume -ReTrim C: refused"); !strings.Contains(line, "virtio-scsi disk reports an unmap granularity of 4096 bytes") {
		t.Errorf("refusal logged as %q", line)
	}
	shutDown(t, vm, user, s.Password, i)
	refused, _ := allocatedClusters(t, disk)
	t.Logf("after deleting the file and a refused retrim on virtio-scsi (4096): %d clusters", refused)
	if refused < written {
		t.Errorf("a refused retrim freed clusters: %d before, %d after", written, refused)
	}

	// virtio-blk with the 8 KiB granularity winbake sets: the free space
	// goes back, at least the clusters of the deleted file.
	vm = start(t, Config{Disk: disk, Firmware: BIOS, Discard: true, DiscardGranularity: 8192})
	_, i, _ = wait(t, vm, biosStage, 0, setup.WinRMListeningPrefix)
	code, out, errOut = retrim(t, vm, user, s.Password)
	if code != 0 || !strings.Contains(out, "VERBOSE: Retrim:  100% complete.") || errOut != "" {
		t.Errorf("retrim at 8 KiB: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	line, _, _ := wait(t, vm, 30*time.Second, i, "Optimize-Volume -ReTrim C:")
	t.Logf("guest: %s", line)
	shutDown(t, vm, user, s.Password, i)
	trimmed, _ := allocatedClusters(t, disk)
	t.Logf("after the retrim on virtio-blk (8192): %d clusters (%d fewer)", trimmed, refused-trimmed)
	if freed := refused - trimmed; freed*clusterSize < int64(len(junk)) {
		t.Errorf("the retrim freed %d clusters of %d bytes, less than the %d bytes deleted", freed, clusterSize, len(junk))
	}
}
