package sysprep

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// noFirmwareHost is a host where probing finds no OVMF at all.
func noFirmwareHost(t *testing.T) *qemuvm.HostPaths {
	empty := t.TempDir()
	return &qemuvm.HostPaths{KVMDevice: filepath.Join(empty, "kvm"), CPUInfo: filepath.Join(empty, "cpuinfo"),
		KVMPVMModule: filepath.Join(empty, "kvm_pvm"), FirmwareDescs: empty, DebianOVMFDir: empty}
}

// The VM boots the OVMF code file the build used (the manifest's
// efi_firmware_code) while it exists, without probing; once it is gone
// the probe decides (and here finds nothing, which says what to set).
func TestPostProcessBootsTheBuildsFirmware(t *testing.T) {
	code := filepath.Join(t.TempDir(), "OVMF_CODE_4M.fd")
	if err := os.WriteFile(code, []byte("code"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, art := goldenImage(t, func(m *image.GeneralizedManifest) { m.EFIFirmwareCode = code })
	out := filepath.Join(t.TempDir(), "generalized")
	driver := &qemuvm.DriverMock{StartVMErr: errors.New("stop here")}
	p := &PostProcessor{driver: driver, host: noFirmwareHost(t)}
	if err := p.Configure(map[string]interface{}{"winrm_password": "Secret-Pw-77", "output_directory": out, "accelerator": "tcg"}); err != nil {
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
	_, _, _, err := p.PostProcess(context.Background(), ui, art)
	if err == nil || !strings.Contains(err.Error(), "efi_firmware_code") || driver.StartVMCalled {
		t.Errorf("without the build's firmware and none on the host: error %v, VM started %t", err, driver.StartVMCalled)
	}
}

// The generalized image's manifest: admin_user is cloudbase-init's
// username when cloudbase-init was installed, the builder's account
// otherwise; efi_firmware_code is the firmware sysprep booted; the
// builder's updates, guest agent and ISO checksum are carried on.
func TestStepWriteManifestAdminUserAndFirmware(t *testing.T) {
	for _, tc := range []struct {
		cloudbaseInit bool
		want          string
	}{{true, "Admin"}, {false, "Administrator"}} {
		dir, art := goldenImage(t, func(m *image.GeneralizedManifest) {
			m.AdminUser, m.ISOChecksum = "Administrator", "sha256:"+strings.Repeat("b", 64)
			yes := true
			m.QemuGuestAgent = &yes
			m.Updates = []image.ManifestUpdate{{KB: "KB5044281", File: "windows10.0-kb5044281-x64.msu", Result: "installed"}}
		})
		in, err := readInput(art)
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		disk := filepath.Join(out, "generalized.qcow2")
		if err := os.WriteFile(disk, []byte("QFI\xfbgeneralized"), 0o644); err != nil {
			t.Fatal(err)
		}
		state := new(multistep.BasicStateBag)
		state.Put("ui", packersdk.TestUi(t))
		state.Put(stateInput, in)
		state.Put(qemuvm.StateDiskPath, disk)
		state.Put(stateCloudbaseInit, tc.cloudbaseInit)
		state.Put(qemuvm.StateOVMF, qemuvm.OVMF{Code: "/usr/share/OVMF/OVMF_CODE_4M.fd", Vars: filepath.Join(out, "efivars.fd")})
		step := &stepWriteManifest{OutputDir: out, VMName: "generalized", CloudbaseInitUser: "Admin"}
		if step.Run(context.Background(), state) != multistep.ActionContinue {
			t.Fatal(state.Get("error"))
		}
		b, err := os.ReadFile(filepath.Join(out, "generalized.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m image.GeneralizedManifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.AdminUser != tc.want || m.EFIFirmwareCode != "/usr/share/OVMF/OVMF_CODE_4M.fd" {
			t.Errorf("cloudbase-init %t: admin_user %q efi_firmware_code %q", tc.cloudbaseInit, m.AdminUser, m.EFIFirmwareCode)
		}
		if m.ISOChecksum != in.Manifest.ISOChecksum || m.QemuGuestAgent == nil || !*m.QemuGuestAgent || len(m.Updates) != 1 || m.Updates[0].KB != "KB5044281" {
			t.Errorf("builder fields not carried on from %s: %s", dir, b)
		}
		if strings.Contains(string(b), "Secret") || strings.Contains(string(b), "password") {
			t.Errorf("manifest mentions a password: %s", b)
		}
	}
}
