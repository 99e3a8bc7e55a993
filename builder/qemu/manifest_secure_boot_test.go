package qemu

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/efivars"
	"github.com/winbake/packer-plugin-winbake/internal/efivars/efivarstest"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// buildWithVars runs a UEFI build whose variable store starts from vars and
// returns the manifest and what the build said.
func buildWithVars(t *testing.T, vars string) (image.Manifest, string) {
	t.Helper()
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	out := filepath.Join(t.TempDir(), "out")
	var b Builder
	if _, _, err := b.Prepare(map[string]interface{}{
		"iso_url": iso, "iso_checksum": "none", "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "firmware": "uefi", "tpm": false, "communicator": "none",
		"efi_firmware_code": "/usr/share/OVMF/OVMF_CODE_4M.fd", "efi_firmware_vars": vars,
		"winrm_password": "Build-Pw-5678", "output_directory": out, "accelerator": "tcg", "boot_command": []string{},
	}); err != nil {
		t.Fatal(err)
	}
	b.driver = &diskWritingMock{}
	var said strings.Builder
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &said, ErrorWriter: &said, PB: &packersdk.NoopProgressTracker{}}
	if _, err := b.Run(context.Background(), ui, &packersdk.MockHook{}); err != nil {
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
	return m, said.String()
}

// The manifest lists the certificates of the variable store the image
// keeps: Debian's Microsoft store has only the 2011 CAs, and the build says
// which 2023 ones are missing; a store with the 2023 CAs has them.
func TestManifestRecordsSecureBootCertificates(t *testing.T) {
	m, said := buildWithVars(t, efivarstest.DebianMicrosoftVars)
	c := m.SecureBootCertificates
	if c == nil {
		t.Fatalf("no secure_boot_certificates; the build said:\n%s", said)
	}
	if !efivars.Has(c.KEK, "Microsoft Corporation KEK CA 2011") || !efivars.Has(c.DB, "Microsoft Windows Production PCA 2011") || len(c.PK) != 1 {
		t.Errorf("certificates %+v", c)
	}
	if !strings.Contains(said, "without Microsoft's 2023 CAs (db: Windows UEFI CA 2023, KEK: Microsoft Corporation KEK 2K CA 2023)") {
		t.Errorf("the build did not say the 2023 CAs are missing:\n%s", said)
	}

	vars := efivarstest.WriteVars(t, t.TempDir(), efivarstest.Enrollment{Variable: "db", CommonName: efivars.WindowsUEFICA2023},
		efivarstest.Enrollment{Variable: "KEK", CommonName: efivars.KEKCA2023})
	m, said = buildWithVars(t, vars)
	if c := m.SecureBootCertificates; c == nil || len(c.Missing2023()) != 0 || strings.Contains(said, "without Microsoft's 2023 CAs") {
		t.Errorf("certificates %+v; the build said:\n%s", c, said)
	}
}

// A variable store winbake cannot read leaves the manifest without
// certificates, and the build says why.
func TestManifestWithoutReadableVariableStore(t *testing.T) {
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	if err := os.WriteFile(vars, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	m, said := buildWithVars(t, vars)
	if m.SecureBootCertificates != nil || !strings.Contains(said, "The Secure Boot certificates of the UEFI variables are not recorded: ") {
		t.Errorf("certificates %+v; the build said:\n%s", m.SecureBootCertificates, said)
	}
}
