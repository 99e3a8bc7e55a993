package qemu

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// secure_boot picks the Secure Boot OVMF with Microsoft's keys, starts
// QEMU with SMM and records it in the manifest.
func TestBuilderSecureBoot(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	out := filepath.Join(t.TempDir(), "out")
	ovmfDir := t.TempDir()
	for _, f := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"} {
		must(t, os.WriteFile(filepath.Join(ovmfDir, f), []byte(f), 0o644))
	}
	var b Builder
	if _, _, err := b.Prepare(map[string]interface{}{
		"iso_url": iso, "iso_checksum": "none", "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "communicator": "none", "disk_interface": "sata", "tpm": false,
		"output_directory": out, "accelerator": "tcg", "secure_boot": true, "boot_command": []string{},
	}); err != nil {
		t.Fatal(err)
	}
	mock := &diskWritingMock{}
	b.driver = mock
	b.host = &qemuvm.HostPaths{FirmwareDescs: t.TempDir(), DebianOVMFDir: ovmfDir}
	if _, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{}); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(qemuvm.Flatten(mock.StartVMArgs), " ")
	for _, w := range []string{"-machine q35,smm=on", "cfi.pflash01,property=secure,value=on", "file=" + filepath.Join(ovmfDir, "OVMF_CODE_4M.secboot.fd")} {
		if !strings.Contains(args, w) {
			t.Errorf("QEMU args lack %q: %s", w, args)
		}
	}
	if vars, _ := os.ReadFile(filepath.Join(out, "efivars.fd")); string(vars) != "OVMF_VARS_4M.ms.fd" {
		t.Errorf("efivars.fd is a copy of %q, not the store with Microsoft's keys", vars)
	}
	var m image.Manifest
	mb, _ := os.ReadFile(filepath.Join(out, "packer-win.json"))
	must(t, json.Unmarshal(mb, &m))
	if !m.SecureBoot || !strings.Contains(string(mb), `"secure_boot": true`) {
		t.Errorf("manifest %s", mb)
	}
}

func TestConfigSecureBootNeedsUEFI(t *testing.T) {
	raw := testConfig()
	raw["firmware"], raw["secure_boot"] = "bios", true
	var c Config
	if _, err := c.Prepare(raw); err == nil || !strings.Contains(err.Error(), "secure_boot:") {
		t.Fatalf("error %v", err)
	}
}
