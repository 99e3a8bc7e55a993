package compress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// fullBelow is the free space under which a failed write is taken for a
// full file system: the tools that hit it say other things (xz dies of
// SIGPIPE when its reader stops, qemu-img's vmdk driver reports EINVAL).
const fullBelow = 1 << 20

// explainNoSpace turns a write that failed on a full file system into an
// error that says so, with the path, the space left and the space the
// image needs; other errors are returned as they are. It must run before
// the partial output is removed, which frees the space again.
func (w *writer) explainNoSpace(err error) error {
	if err == nil || w.ctx.Err() != nil {
		return err
	}
	dir := filepath.Dir(w.out)
	var st syscall.Statfs_t
	if statErr := syscall.Statfs(dir, &st); statErr != nil {
		return err
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	total := int64(st.Blocks) * int64(st.Bsize)
	full := errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "No space left on device") || free < fullBelow
	if !full {
		return err
	}
	need := "the input's data"
	if n, mErr := measureData(w.ctx, w.src, w.info.Format); mErr == nil {
		need = progress.Bytes(n) + " (the input's data, before compression)"
		// A raw output is written sparse: its data is what it needs.
		if w.spec.QemuFormat != "" && w.spec.QemuFormat != "raw" {
			if m, mErr := measure(w.ctx, w.src, w.info.Format, w.spec.QemuFormat); mErr == nil {
				need = progress.Bytes(m)
			}
		}
	}
	return fmt.Errorf("no space left on device writing %s: %s has %s free of %s, and the %s image needs up to %s; free space there or set output to a larger file system (%v)",
		w.out, dir, progress.Bytes(free), progress.Bytes(total), w.spec.Name, need, err)
}

// measureData is how many bytes of data the input holds (qemu-img measure
// of a plain qcow2: the allocated clusters and their metadata).
func measureData(ctx context.Context, src, format string) (int64, error) {
	return measure(ctx, src, format, "qcow2")
}

// measure is qemu-img measure's required size for src written as format.
func measure(ctx context.Context, src, srcFormat, format string) (int64, error) {
	out, err := exec.CommandContext(ctx, qemuImgCommand, "measure", "--output=json", "-f", srcFormat, "-O", format, src).Output()
	if err != nil {
		return 0, err
	}
	var m struct {
		Required int64 `json:"required"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return 0, err
	}
	return m.Required, nil
}
