package qemu

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// sourceArtifact writes what an earlier UEFI build left: a qcow2 disk (its
// magic), the manifest, efivars.fd and tpm/.
func sourceArtifact(t *testing.T) (disk string) {
	dir := t.TempDir()
	disk = filepath.Join(dir, "golden.qcow2")
	must(t, os.WriteFile(disk, []byte("QFI\xfbgolden disk"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "efivars.fd"), []byte("source vars"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "tpm"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "tpm", "tpm2-00.permall"), []byte("source tpm"), 0o600))
	m := map[string]any{"disk": "golden.qcow2", "firmware": "uefi", "efivars": "efivars.fd", "tpm": true, "tpm_state": "tpm",
		"iso_checksum": "sha256:" + strings.Repeat("5a", 32),
		"windows":      map[string]any{"image_name": "Windows Server 2022 SERVERSTANDARDCORE", "version": "10.0.20348.587"}}
	b, _ := json.Marshal(m)
	must(t, os.WriteFile(filepath.Join(dir, "golden.json"), b, 0o644))
	return disk
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fileWritingMock leaves files where qemu-img would.
type fileWritingMock struct{ diskWritingMock }

func (d *fileWritingMock) CreateOverlay(path, backing string) error {
	_ = d.DriverMock.CreateOverlay(path, backing)
	return os.WriteFile(path, []byte("QFI\xfboverlay"), 0o644)
}

func (d *fileWritingMock) ConvertDisk(src, dst string) error {
	_ = d.DriverMock.ConvertDisk(src, dst)
	return os.WriteFile(dst, []byte("QFI\xfbflattened"), 0o644)
}

// A build from source_image: overlay on the source, no install media, the
// source's UEFI variables and TPM state, the overlay flattened at the end,
// the source untouched.
func TestBuilderRunFromSourceImage(t *testing.T) {
	src := sourceArtifact(t)
	before, _ := os.ReadFile(src)
	sum, _, _ := diskcheck.FileSHA256(context.Background(), src)
	out := filepath.Join(t.TempDir(), "out")
	ovmfDir := t.TempDir()
	code := filepath.Join(ovmfDir, "OVMF_CODE_4M.fd")
	must(t, os.WriteFile(code, []byte("code"), 0o644))
	must(t, os.WriteFile(filepath.Join(ovmfDir, "OVMF_VARS_4M.fd"), []byte("template vars"), 0o644))

	var b Builder
	_, warns, err := b.Prepare(map[string]interface{}{
		"source_image": src, "source_image_checksum": "sha256:" + sum, "winrm_password": "Passw0rd!",
		"packer_build_name": "refresh", "communicator": "none", "output_directory": out, "accelerator": "tcg",
		"image_name": "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.config.Firmware != "uefi" || !b.config.TPMEnabled() || len(b.config.bootKeys) != 0 {
		t.Errorf("firmware %s tpm %v boot keys %v: not taken from the source's manifest", b.config.Firmware, b.config.TPMEnabled(), b.config.bootKeys)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "image_name") {
		t.Errorf("warnings %v", warns)
	}
	mock := &fileWritingMock{}
	b.driver = mock
	b.host = &qemuvm.HostPaths{FirmwareDescs: t.TempDir(), DebianOVMFDir: ovmfDir, KVMDevice: "/nonexistent"}
	if _, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{}); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(out, "packer-refresh.qcow2")
	if mock.OverlayPath != disk || mock.OverlayBacking != src {
		t.Errorf("overlay %s on %s", mock.OverlayPath, mock.OverlayBacking)
	}
	args := strings.Join(qemuvm.Flatten(mock.StartVMArgs), " ")
	if strings.Contains(args, "cdrom") || !strings.Contains(args, "file="+disk) || !strings.Contains(args, "bootindex=0") {
		t.Errorf("QEMU args: %s", args)
	}
	if mock.ConvertSrc != disk || mock.ConvertDst != disk+".flat" {
		t.Errorf("flatten %s -> %s", mock.ConvertSrc, mock.ConvertDst)
	}
	if b, _ := os.ReadFile(disk); string(b) != "QFI\xfbflattened" {
		t.Errorf("the artifact's disk is %q, not the flattened one", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "efivars.fd")); string(b) != "source vars" {
		t.Errorf("efivars.fd %q is not the source's", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "tpm", "tpm2-00.permall")); string(b) != "source tpm" {
		t.Errorf("TPM state %q is not the source's", b)
	}
	var m image.Manifest
	mb, _ := os.ReadFile(filepath.Join(out, "packer-refresh.json"))
	must(t, json.Unmarshal(mb, &m))
	// The ISO checksum is carried on from the source's manifest.
	if m.SourceImage != src || m.Windows.ImageName != "Windows Server 2022 SERVERSTANDARDCORE" || m.Firmware != "uefi" || !m.TPM ||
		m.ISOChecksum != "sha256:"+strings.Repeat("5a", 32) {
		t.Errorf("manifest %s", mb)
	}
	if after, _ := os.ReadFile(src); string(after) != string(before) {
		t.Error("the source image changed")
	}
}

func TestBuilderSourceImageBadChecksum(t *testing.T) {
	src := sourceArtifact(t)
	out := filepath.Join(t.TempDir(), "out")
	var b Builder
	if _, _, err := b.Prepare(map[string]interface{}{
		"source_image": src, "source_image_checksum": "sha256:" + strings.Repeat("0", 64), "winrm_password": "Passw0rd!",
		"packer_build_name": "refresh", "communicator": "none", "output_directory": out, "firmware": "uefi",
		"efi_firmware_code": src, "efi_firmware_vars": src,
	}); err != nil {
		t.Fatal(err)
	}
	mock := &fileWritingMock{}
	b.driver = mock
	_, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{})
	if err == nil || !strings.HasPrefix(err.Error(), "source_image_checksum:") || mock.StartVMCalled || mock.OverlayPath != "" {
		t.Fatalf("error %v; VM started %v", err, mock.StartVMCalled)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory left")
	}
}

func TestConfigSourceImageRejects(t *testing.T) {
	src := sourceArtifact(t)
	notQcow := filepath.Join(t.TempDir(), "disk.raw")
	must(t, os.WriteFile(notQcow, []byte("raw disk"), 0o644))
	for _, tc := range []struct {
		name  string
		raw   map[string]interface{}
		field string
	}{
		{"with iso_url", map[string]interface{}{"source_image": src, "iso_url": "testdata/win.iso", "iso_checksum": "none", "winrm_password": "x"}, "source_image: set together with iso_url"},
		{"missing", map[string]interface{}{"source_image": src + ".nope", "winrm_password": "x"}, "source_image:"},
		{"not qcow2", map[string]interface{}{"source_image": notQcow, "winrm_password": "x"}, "is not a qcow2 image"},
		{"bad checksum", map[string]interface{}{"source_image": src, "source_image_checksum": "md5:abc", "winrm_password": "x"}, "source_image_checksum:"},
		{"no password", map[string]interface{}{"source_image": src}, "winrm_password: required with source_image"},
		{"firmware mismatch", map[string]interface{}{"source_image": src, "firmware": "bios", "winrm_password": "x"}, `firmware = "uefi"`},
		{"checksum without image", map[string]interface{}{"iso_url": "testdata/win.iso", "iso_checksum": "none", "image_name": "x", "source_image_checksum": "none"}, "source_image_checksum: set without source_image"},
		// The source (recorded before winbake wrote winrm: HTTP with Basic)
		// would send the password over the bridge in the clear.
		{"http source on a bridge", map[string]interface{}{"source_image": src, "winrm_password": "x", "network": "bridge", "bridge": "br0"}, "would carry the password over the network in the clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.raw["packer_build_name"] = "x"
			var c Config
			_, err := c.Prepare(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v should say %q", err, tc.field)
			}
		})
	}
}
