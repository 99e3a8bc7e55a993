package glance

import (
	"context"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
)

// check refuses a damaged image file before anything is created in
// Glance: the size and SHA-256 winbake-compress recorded for it, else the
// SHA-256 its winbake manifest records, then the format's own check
// (qemu-img check). Glance stores whatever it is sent and reports the
// hash of what it got, so a truncated qcow2 would become an active image
// whose hashes match and whose disk is zeros.
func (s *source) check(ctx context.Context, manifestPath string) error {
	var err error
	if s.recorded != nil {
		err = diskcheck.Recorded(ctx, s.Path, s.recorded.Size, s.recorded.SHA256, "the winbake-compress artifact")
	} else {
		err = diskcheck.CheckAgainstManifest(ctx, s.Path, manifestPath)
	}
	if err != nil {
		return err
	}
	_, err = diskcheck.Check(ctx, "image file", s.Path)
	return err
}
