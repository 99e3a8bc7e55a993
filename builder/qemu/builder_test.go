package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// diskWritingMock is a DriverMock whose CreateDisk leaves a file, so the
// manifest step has a disk to checksum.
type diskWritingMock struct{ qemuvm.DriverMock }

func (d *diskWritingMock) CreateDisk(path string, sizeMB uint64) error {
	_ = d.DriverMock.CreateDisk(path, sizeMB)
	return os.WriteFile(path, []byte("qcow2"), 0o644)
}

// The whole step list with a mock driver: the ISO is checked, the answer
// CD made, QEMU "started" with the expected media, the VM "powers off",
// and the manifest describes the disk.
func TestBuilderRunWithMockDriver(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	out := filepath.Join(t.TempDir(), "out")
	raw := map[string]interface{}{
		"iso_url": iso, "iso_checksum": "none", "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "firmware": "bios", "communicator": "none", "disk_interface": "sata",
		"output_directory": out, "accelerator": "tcg", "qemu_args": [][]string{{"-device", "usb-tablet"}},
	}
	var b Builder
	generated, _, err := b.Prepare(raw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(generated, ",") != "WinbakeHostIP,WinbakeHostBindIP" {
		t.Errorf("Prepare declares generated data %v", generated)
	}
	mock := &diskWritingMock{}
	b.driver = mock
	hook := &packersdk.MockHook{}
	art, err := b.Run(context.Background(), packersdk.TestUi(t), hook)
	if err != nil {
		t.Fatal(err)
	}
	// What the provisioners receive.
	if hookData, _ := hook.RunData.(map[string]interface{}); hookData["WinbakeHostIP"] != "10.0.2.2" || hookData["WinbakeHostBindIP"] != "127.0.0.1" {
		t.Errorf("provisioner hook data %v", hook.RunData)
	}
	data, _ := art.State("generated_data").(map[string]interface{})
	if data["WinbakeHostIP"] != "10.0.2.2" || data["WinbakeHostBindIP"] != "127.0.0.1" {
		t.Errorf("generated data %v", data)
	}
	args := strings.Join(qemuvm.Flatten(mock.StartVMArgs), " ")
	for _, w := range []string{"file=" + iso, "answercd", "ide-hd,drive=disk0", "-device usb-tablet"} {
		if !strings.Contains(args, w) {
			t.Errorf("QEMU args lack %q: %s", w, args)
		}
	}
	var m image.Manifest
	b2, err := os.ReadFile(filepath.Join(out, "packer-win.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b2, &m); err != nil {
		t.Fatal(err)
	}
	if m.Disk != "packer-win.qcow2" || len(m.SHA256) != 64 || m.Firmware != "bios" || m.TPM || m.DiskInterface != "sata" ||
		m.Windows.ImageName != "Windows Server 2022 SERVERDATACENTER" || !strings.HasPrefix(m.Windows.Version, "10.0.20348") || m.Accelerator != "tcg" {
		t.Errorf("manifest %+v", m)
	}
	if art.BuilderId() != image.QemuBuilderID || len(art.Files()) < 2 {
		t.Errorf("artifact %s %v", art.BuilderId(), art.Files())
	}
	if _, err := os.Stat(filepath.Join(out, "qmp.sock")); !os.IsNotExist(err) {
		t.Error("QMP socket path left behind")
	}
	if mock.StopVMCalls != 1 {
		t.Errorf("StopVM called %d times by cleanup", mock.StopVMCalls)
	}
}

// A wrong image_name fails before QEMU starts, and nothing is left.
func TestBuilderBadImageNameStopsBeforeQEMU(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	out := filepath.Join(t.TempDir(), "out")
	var b Builder
	if _, _, err := b.Prepare(map[string]interface{}{
		"iso_url": iso, "iso_checksum": "none", "image_name": "Windows 11 Pro",
		"packer_build_name": "win", "output_directory": out,
	}); err != nil {
		t.Fatal(err)
	}
	mock := &diskWritingMock{}
	b.driver = mock
	_, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{})
	if err == nil || !strings.Contains(err.Error(), "image_name") {
		t.Fatalf("error %v should name image_name", err)
	}
	if mock.StartVMCalled || mock.CreateDiskPath != "" {
		t.Error("QEMU or the disk was started although the image is not on the ISO")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory created")
	}
}

// QEMU dies while the build waits for WinRM (killed, here): the build fails
// at once, not when winrm_timeout runs out, with QEMU's exit status and
// the last serial console lines, and nothing of it is left: no output
// directory, no port lock file, no VM.
func TestBuilderFailsAtOnceWhenQEMUExits(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PACKER_CACHE_DIR", cache)
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	out := filepath.Join(t.TempDir(), "out")
	var b Builder
	if _, _, err := b.Prepare(map[string]interface{}{
		"iso_url": iso, "iso_checksum": "none", "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "firmware": "bios", "output_directory": out, "accelerator": "tcg",
		"communicator": "winrm", "winrm_username": "Administrator", "winrm_password": "pw", "winrm_timeout": "30m",
	}); err != nil {
		t.Fatal(err)
	}
	mock := &diskWritingMock{}
	var once sync.Once
	mock.WaitVMFunc = func(ctx context.Context) error {
		var err error
		once.Do(func() {
			// Five seconds into the boot, as a crash or the OOM killer
			// would.
			serial := "BdsDxe: loading Boot0001 \"UEFI QEMU DVD-ROM\"\r\nsetup: windowsPE\r\nwinbake stand-in: copying files\r\n"
			err = os.WriteFile(filepath.Join(out, qemuvm.SerialLogName), []byte(serial), 0o644)
			if err == nil {
				err = errors.New("QEMU: signal: killed")
			}
		})
		if err == nil {
			<-ctx.Done()
			return ctx.Err()
		}
		return err
	}
	b.driver = mock
	done := make(chan error, 1)
	go func() {
		_, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the build still waits for WinRM 2 minutes after QEMU exited")
	}
	if err == nil {
		t.Fatal("the build succeeded without its VM")
	}
	for _, want := range []string{"QEMU exited: signal: killed", "winbake stand-in: copying files", "setup: windowsPE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Timeout waiting for WinRM") {
		t.Errorf("error %q blames WinRM", err)
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Errorf("output directory left behind: %v", statErr)
	}
	if locks, _ := os.ReadDir(filepath.Join(cache, "port")); len(locks) != 0 {
		t.Errorf("port lock files left: %d", len(locks))
	}
	if mock.StopVMCalls != 1 {
		t.Errorf("StopVM called %d times by cleanup, want 1", mock.StopVMCalls)
	}
}
