package verify

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// The instance boots the OVMF code file the image was built with (the
// manifest's efi_firmware_code) while it exists, without probing the host;
// once it is gone the probe decides (here it finds nothing and says what
// to set).
func TestPostProcessBootsTheBuildsFirmware(t *testing.T) {
	t.Setenv("PACKER_TMP_DIR", t.TempDir())
	dir, art := generalizedImage(t)
	code := filepath.Join(t.TempDir(), "OVMF_CODE_4M.secboot.fd")
	if err := os.WriteFile(code, []byte("code"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "standin.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m image.GeneralizedManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m.EFIFirmwareCode = code
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	driver := &qemuvm.DriverMock{StartVMErr: errors.New("stop here")}
	p := &PostProcessor{driver: driver, host: &qemuvm.HostPaths{KVMDevice: filepath.Join(empty, "kvm"), CPUInfo: filepath.Join(empty, "cpuinfo"),
		KVMPVMModule: filepath.Join(empty, "kvm_pvm"), FirmwareDescs: empty, DebianOVMFDir: empty}}
	if err := p.Configure(map[string]interface{}{"accelerator": "tcg", "timeout": "1m"}); err != nil {
		t.Fatal(err)
	}
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}}
	if _, _, _, err := p.PostProcess(context.Background(), ui, art); err == nil || !strings.Contains(err.Error(), "stop here") {
		t.Fatalf("error %v", err)
	}
	if args := strings.Join(qemuvm.Flatten(driver.StartVMArgs), " "); !strings.Contains(args, "file="+code) {
		t.Errorf("QEMU does not boot %s: %s", code, args)
	}

	if err := os.Remove(code); err != nil {
		t.Fatal(err)
	}
	driver = &qemuvm.DriverMock{}
	p.driver = driver
	_, _, _, err = p.PostProcess(context.Background(), ui, art)
	if err == nil || !strings.Contains(err.Error(), "efi_firmware_code") || driver.StartVMCalled {
		t.Errorf("without the build's firmware and none on the host: error %v, VM started %t", err, driver.StartVMCalled)
	}
}
