package diskcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// CheckAgainstManifest compares the disk with the SHA-256 its winbake
// manifest (the builders' and winbake-sysprep's <vm_name>.json) records
// for it. Nothing is compared when the manifest names another disk (a
// winbake-compress output next to it) or records no SHA-256 (a disk kept
// in a libvirt pool).
func CheckAgainstManifest(ctx context.Context, disk, manifest string) error {
	if manifest == "" {
		return nil
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		return fmt.Errorf("reading the manifest of %s: %w", disk, err)
	}
	var m struct {
		Disk   string `json:"disk"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", manifest, err)
	}
	if m.Disk != filepath.Base(disk) || m.SHA256 == "" {
		return nil
	}
	return Recorded(ctx, disk, 0, m.SHA256, "its manifest "+manifest)
}
