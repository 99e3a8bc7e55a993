package sysprep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

func testPostProcessor(t *testing.T, driver qemuvm.Driver, out string) *PostProcessor {
	t.Helper()
	code := filepath.Join(t.TempDir(), "OVMF_CODE_4M.fd")
	if err := os.WriteFile(code, []byte("code"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &PostProcessor{driver: driver}
	if err := p.Configure(map[string]interface{}{
		"winrm_password": "Secret-Pw-77", "efi_firmware_code": code, "output_directory": out,
		"winrm_timeout": "5m", "accelerator": "tcg",
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// QEMU failing to start: the error reaches the user, the output directory
// is gone, the golden image is untouched, and kept (the default for a
// winbake golden image).
func TestPostProcessFailureLeavesNothing(t *testing.T) {
	golden, art := goldenImage(t, nil)
	before, _ := os.ReadFile(filepath.Join(golden, "standin.qcow2"))
	out := filepath.Join(t.TempDir(), "generalized")
	driver := &qemuvm.DriverMock{StartVMErr: errors.New("starting QEMU: no such file")}
	p := testPostProcessor(t, driver, out)
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}}
	a, keep, _, err := p.PostProcess(context.Background(), ui, art)
	if err == nil || a != nil || !strings.Contains(err.Error(), "starting QEMU: no such file") {
		t.Fatalf("artifact %v, error %v", a, err)
	}
	if !keep {
		t.Error("the golden image is not kept")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory left behind: %v", err)
	}
	if driver.ConvertSrc != filepath.Join(golden, "standin.qcow2") || driver.TPMStateDir != filepath.Join(out, "tpm") || driver.StopTPMCalls != 1 {
		t.Errorf("convert from %s, TPM in %s, StopTPM %d", driver.ConvertSrc, driver.TPMStateDir, driver.StopTPMCalls)
	}
	if after, _ := os.ReadFile(filepath.Join(golden, "standin.qcow2")); string(after) != string(before) {
		t.Error("the golden disk changed")
	}
}

// Ctrl-C while waiting for WinRM: QEMU is stopped and nothing is left.
// A Secure Boot image boots with SMM, as it was built.
func TestPostProcessCancelLeavesNothing(t *testing.T) {
	_, art := goldenImage(t, func(m *image.GeneralizedManifest) { m.SecureBoot = true })
	out := filepath.Join(t.TempDir(), "generalized")
	driver := &qemuvm.DriverMock{}
	p := testPostProcessor(t, driver, out)
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	a, _, _, err := p.PostProcess(ctx, ui, art)
	if err == nil || a != nil {
		t.Fatalf("artifact %v, error %v", a, err)
	}
	if !driver.StartVMCalled || driver.StopVMCalls == 0 {
		t.Errorf("VM started %t, stopped %d times", driver.StartVMCalled, driver.StopVMCalls)
	}
	// The VM runs the copies, under the hardware the manifest records.
	args := strings.Join(qemuvm.Flatten(driver.StartVMArgs), " ")
	for _, want := range []string{"unit=1,file=" + filepath.Join(out, "efivars.fd"), "file=" + filepath.Join(out, "standin.qcow2"),
		"path=" + filepath.Join(out, "tpm", "swtpm.sock"), "-machine q35", "ide-hd,drive=disk0", "e1000,netdev=n0", "-accel tcg", "-machine q35,smm=on"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU arguments lack %q: %s", want, args)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory left behind: %v", err)
	}
}
