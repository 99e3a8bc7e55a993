package qemu

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// Under KVM the VM starts with the Hyper-V enlightenments and the manifest
// lists them; under TCG, or with hyperv_enlightenments = false, it lists
// none (an empty list, not an absent field).
func TestManifestRecordsHyperVEnlightenments(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	for _, tc := range []struct {
		name  string
		extra map[string]interface{}
		want  []string
	}{
		{"kvm", map[string]interface{}{"accelerator": "kvm"}, qemuvm.HyperVEnlightenments},
		{"kvm, switched off", map[string]interface{}{"accelerator": "kvm", "hyperv_enlightenments": false}, []string{}},
		{"tcg", map[string]interface{}{"accelerator": "tcg"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			raw := map[string]interface{}{
				"iso_url": iso, "iso_checksum": "none", "image_name": "Windows Server 2022 SERVERDATACENTER",
				"packer_build_name": "win", "firmware": "bios", "communicator": "none", "disk_interface": "virtio-scsi",
				"output_directory": out,
			}
			for k, v := range tc.extra {
				raw[k] = v
			}
			var b Builder
			if _, _, err := b.Prepare(raw); err != nil {
				t.Fatal(err)
			}
			d := &diskWritingMock{}
			b.driver = d
			if _, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{}); err != nil {
				t.Fatal(err)
			}
			raw2, err := os.ReadFile(filepath.Join(out, "packer-win.json"))
			if err != nil {
				t.Fatal(err)
			}
			var m image.Manifest
			if err := json.Unmarshal(raw2, &m); err != nil {
				t.Fatal(err)
			}
			if m.HyperVEnlightenments == nil || !slices.Equal(m.HyperVEnlightenments, tc.want) {
				t.Errorf("manifest hyperv_enlightenments %q, want %q:\n%s", m.HyperVEnlightenments, tc.want, raw2)
			}
			args := strings.Join(qemuvm.Flatten(d.StartVMArgs), " ")
			if hv := strings.Contains(args, "hv-relaxed"); hv != (len(tc.want) > 0) {
				t.Errorf("QEMU arguments (enlightenments %v): %s", len(tc.want) > 0, args)
			}
			if !strings.Contains(args, "scsi-hd,drive=disk0,bus=scsi0.0,discard_granularity=8192,") {
				t.Errorf("system disk without the 8 KiB granularity: %s", args)
			}
		})
	}
}
