package compress

import (
	"context"
	"fmt"
	"path/filepath"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
)

// checkInput refuses a damaged input disk before anything is written: the
// format's own check (qemu-img check; a raw disk must be whole sectors)
// and the SHA-256 its winbake manifest records. qemu-img convert reads a
// truncated qcow2's missing clusters as zeros and would otherwise write
// a "good" image of a broken disk.
func checkInput(ctx context.Context, ui packersdk.Ui, src, manifest string) error {
	ui.Say(fmt.Sprintf("Checking the input disk image %s...", filepath.Base(src)))
	if _, err := diskcheck.Check(ctx, "input disk image", src); err != nil {
		return err
	}
	return diskcheck.CheckAgainstManifest(ctx, src, manifest)
}
