package sysprep

import (
	"context"
	"fmt"
	"path/filepath"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
)

// checkInputDisk refuses a damaged golden disk before it is copied and
// booted: qemu-img check, and the SHA-256 its manifest records.
func checkInputDisk(ctx context.Context, ui packersdk.Ui, in *inputImage) error {
	ui.Say(fmt.Sprintf("Checking the input disk %s...", filepath.Base(in.DiskPath)))
	if _, err := diskcheck.Check(ctx, "input disk", in.DiskPath); err != nil {
		return err
	}
	return diskcheck.CheckAgainstManifest(ctx, in.DiskPath, in.ManifestPath)
}
