package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// The manifest records the ISO checksum as verified (type:value, lower
// case, from a bare upper-case digest), the OVMF code file the VM booted
// (absolute), and the build account; with communicator "none" the guest
// is not asked, so neither updates nor qemu_guest_agent appear; the build
// password never does.
func TestManifestRecordsChecksumFirmwareAndAdminUser(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	data, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(data))
	fw := t.TempDir()
	code, vars := filepath.Join(fw, "OVMF_CODE_4M.fd"), filepath.Join(fw, "OVMF_VARS_4M.fd")
	for _, f := range []string{code, vars} {
		if err := os.WriteFile(f, []byte("flash"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(fw)
	out := filepath.Join(t.TempDir(), "out")
	var b Builder
	if _, _, err := b.Prepare(map[string]interface{}{
		"iso_url": iso, "iso_checksum": strings.ToUpper(sum), "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "firmware": "uefi", "tpm": false, "communicator": "none",
		"efi_firmware_code": "OVMF_CODE_4M.fd", "efi_firmware_vars": vars,
		"winrm_username": "builder", "winrm_password": "Build-Pw-5678",
		"output_directory": out, "accelerator": "tcg", "boot_command": []string{},
	}); err != nil {
		t.Fatal(err)
	}
	b.driver = &diskWritingMock{}
	if _, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "packer-win.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m image.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ISOChecksum != "sha256:"+sum || m.EFIFirmwareCode != code || m.AdminUser != "builder" || m.EFIVars != "efivars.fd" {
		t.Errorf("iso_checksum %q efi_firmware_code %q admin_user %q efivars %q", m.ISOChecksum, m.EFIFirmwareCode, m.AdminUser, m.EFIVars)
	}
	for _, s := range []string{`"updates"`, `"qemu_guest_agent"`, "Build-Pw-5678"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("manifest contains %s:\n%s", s, raw)
		}
	}
}
