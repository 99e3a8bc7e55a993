package verify

import (
	"context"
	"fmt"
	"path/filepath"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// checkInputDisk refuses a damaged disk before the instance boots it:
// qemu-img check, and the size and SHA-256 recorded for it (by
// winbake-compress for its qcow2 output, else by the image's manifest).
func checkInputDisk(ctx context.Context, ui packersdk.Ui, a packersdk.Artifact, in *inputImage) error {
	ui.Say(fmt.Sprintf("Checking the disk %s...", filepath.Base(in.DiskPath)))
	if a.BuilderId() == image.CompressBuilderID {
		outputs, err := image.CompressedOutputs(a)
		if err != nil {
			return err
		}
		for _, o := range outputs {
			if o.Path == in.DiskPath {
				if err := diskcheck.Recorded(ctx, o.Path, o.Size, o.SHA256, "the winbake-compress artifact"); err != nil {
					return err
				}
			}
		}
	} else if err := diskcheck.CheckAgainstManifest(ctx, in.DiskPath, in.ManifestPath); err != nil {
		return err
	}
	_, err := diskcheck.Check(ctx, "disk", in.DiskPath)
	return err
}
