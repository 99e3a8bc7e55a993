package glance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// A damaged image file is refused before anything is created in Glance:
// a golden qcow2 cut short (its manifest's SHA-256, then qemu-img check),
// a winbake-compress qcow2 cut short (the size the compress artifact
// records), and an image_file cut short (qemu-img check alone).
func TestDamagedImageFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "ws2022.qcow2")
	writeQcow2(t, disk, 3<<20)
	manifest := filepath.Join(dir, "ws2022.json")
	writeManifest(t, manifest, disk)
	st, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{}
	if _, err := resolveSource(context.Background(), c, &builderArtifact{files: []string{disk}, manifest: manifest}); err != nil {
		t.Fatalf("the intact disk: %v", err)
	}
	if err := os.Truncate(disk, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		input packersdk.Artifact
		want  string
	}{
		{"golden", Config{}, &builderArtifact{files: []string{disk}, manifest: manifest}, "but its manifest " + manifest + " records"},
		{"compressed", Config{}, &image.Compressed{Outputs: []image.Output{{Path: disk, Format: "qcow2", DiskFormat: "qcow2", Size: st.Size(), SHA256: strings.Repeat("0", 64)}}},
			"but the winbake-compress artifact records"},
		{"image_file", Config{ImageFile: disk}, &image.Compressed{}, "is a damaged qcow2 image: qemu-img check found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.ImageFile != "" {
				// No manifest next to the file: only the format's check
				// is left.
				if err := os.Remove(manifest); err != nil {
					t.Fatal(err)
				}
			}
			src, err := resolveSource(context.Background(), &tc.cfg, tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), disk) {
				t.Errorf("source %+v, error %v; want one naming %s and %q", src, err, disk, tc.want)
			}
		})
	}
}
