package compress

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// writer makes one output file. Everything it creates is removed by cleanup
// unless finish succeeded.
type writer struct {
	ctx  context.Context
	ui   packersdk.Ui
	cfg  *Config
	spec formatSpec
	src  string
	info imageInfo
	out  string

	partial string   // output being written
	sha256  string   // hex SHA-256 of partial, when computed while writing
	temps   []string // other files to remove
	done    bool
}

// writeAndFinish writes the output and moves it into place; whatever it
// made is removed when it fails.
func (w *writer) writeAndFinish() (image.Output, error) {
	defer w.cleanup()
	if err := w.write(); err != nil {
		return image.Output{}, w.explainNoSpace(err)
	}
	out, err := w.finish()
	return out, w.explainNoSpace(err)
}

func (w *writer) cleanup() {
	if w.done {
		return
	}
	for _, f := range append(w.temps, w.partial) {
		if f != "" {
			_ = os.Remove(f)
		}
	}
}

// tempPath reserves a unique hidden file name next to the output.
func (w *writer) tempPath(suffix string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(w.out), "."+filepath.Base(w.out)+".*"+suffix)
	if err != nil {
		return "", fmt.Errorf("creating temporary file: %w", err)
	}
	name := f.Name()
	_ = f.Close()
	return name, nil
}

func (w *writer) write() error {
	var err error
	if w.partial, err = w.tempPath(".partial"); err != nil {
		return err
	}
	// Formats winbake writes itself when it can read the input's guest
	// bytes; each reports false to leave the output to qemu-img.
	goWriters := map[string]func() (bool, error){
		"qcow2": w.writeQcow2Go,
		"vmdk":  w.writeVMDKGo,
		"vhdx":  w.writeVHDXGo,
	}
	if write, ok := goWriters[w.spec.Name]; ok {
		if wrote, err := write(); wrote || err != nil {
			return err
		}
	}
	if w.spec.QemuFormat != "" {
		return w.writeQemu()
	}

	return w.writeStream()
}

func (w *writer) sayPercent(what string) func(int) {
	return func(pct int) { w.ui.Say(fmt.Sprintf("%s: %d%%", what, pct)) }
}

// diskLayout returns the guest bytes of the input, read straight from the
// input file when qemu-img map says they can be (raw and uncompressed
// qcow2), else from a temporary sparse raw conversion next to the output.
func (w *writer) diskLayout() (*diskLayout, error) {
	layout, ok, err := readLayout(w.ctx, w.src, w.info)
	if err != nil || ok {
		return layout, err
	}
	tmp, err := w.tempPath(".raw.tmp")
	if err != nil {
		return nil, err
	}
	w.temps = append(w.temps, tmp)
	w.ui.Say(fmt.Sprintf("Converting %s (%s) to a temporary raw image %s...", filepath.Base(w.src), w.info.Format, tmp))
	err = qemuImgConvert(w.ctx, w.src, w.info.Format, tmp, "raw",
		[]string{"-m", "16", "-W"}, w.sayPercent("qemu-img convert to raw"))
	if err != nil {
		return nil, err
	}
	layout, ok, err = readLayout(w.ctx, tmp, imageInfo{Format: "raw", VirtualSize: w.info.VirtualSize})
	if err == nil && !ok {
		err = fmt.Errorf("qemu-img map cannot map the raw conversion %s", tmp)
	}
	return layout, err
}

// progress reports total guest bytes; add counts done ones.
func (w *writer) progress(name string, total int64) (add func(int64), done func()) {
	return progress.Counter(w.ui, name, total)
}

// finish checks the finished output, hashes it, and moves it into place.
func (w *writer) finish() (image.Output, error) {
	if err := w.ctx.Err(); err != nil {
		return image.Output{}, err
	}
	sum := w.sha256
	var size int64
	if sum == "" {
		w.ui.Say(fmt.Sprintf("Computing SHA-256 of %s...", filepath.Base(w.out)))
		var err error
		// Read back from the page cache qemu-img just filled. Outputs are
		// not fsynced: like qemu-img and Packer, winbake leaves write-back
		// to the kernel; a file gets its final name only once it is
		// complete, which is what the post-processors after it rely on.
		if sum, size, err = diskcheck.FileSHA256(w.ctx, w.partial); err != nil {
			return image.Output{}, err
		}
	} else {
		fi, err := os.Stat(w.partial)
		if err != nil {
			return image.Output{}, err
		}
		size = fi.Size()
	}
	if err := os.Chmod(w.partial, 0o644); err != nil {
		return image.Output{}, err
	}
	if err := os.Rename(w.partial, w.out); err != nil {
		return image.Output{}, fmt.Errorf("moving %s into place: %w", w.out, err)
	}
	w.done = true
	for _, f := range w.temps {
		_ = os.Remove(f)
	}
	w.ui.Say(fmt.Sprintf("Wrote %s (%s, sha256 %s)", w.out, progress.Bytes(size), sum))
	return image.Output{Path: w.out, Format: w.spec.Name, SHA256: sum, Size: size,
		DiskFormat: w.spec.DiskFormat, MaasFiletype: w.spec.MaasFiletype}, nil
}
