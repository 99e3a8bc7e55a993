package compress

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// qemuOptions are the qemu-img convert options for the output format.
func (w *writer) qemuOptions() []string {
	// More coroutines than the default 8 keep a disk busy on large images.
	opts := []string{"-m", "16"}
	switch w.spec.Name {
	case "qcow2":
		if w.cfg.Qcow2Compression != qcow2None {
			opts = append(opts, "-c", "-o", "compression_type="+w.cfg.Qcow2Compression)
		}
		// Out-of-order writes let qemu compress clusters in parallel; the
		// image stays valid, only the cluster order within the file varies.
		opts = append(opts, "-W")
	case "raw":
		opts = append(opts, "-W")
	case "vhdx":
		opts = append(opts, "-o", "subformat=dynamic")
	case "vmdk":
		// Stream-optimized VMDKs are written in order.
		opts = append(opts, "-o", "subformat=streamOptimized")
	}
	return opts
}

func (w *writer) writeQemu() error {
	desc := w.spec.Name
	if w.spec.Name == "qcow2" {
		desc = fmt.Sprintf("qcow2 (%s compression)", w.cfg.Qcow2Compression)
	}
	w.ui.Say(fmt.Sprintf("Converting %s to %s with qemu-img...", filepath.Base(w.src), desc))
	return qemuImgConvert(w.ctx, w.src, w.info.Format, w.partial, w.spec.QemuFormat,
		w.qemuOptions(), w.sayPercent("qemu-img convert"))
}

// writeStream writes the dd.* formats: gzip (dd.gz, and dd.tgz as a tar
// with the single member TarMemberName) on all cores, or xz with `xz -T0`.
// The SHA-256 of the output is computed as it is written.
func (w *writer) writeStream() error {
	layout, err := w.diskLayout()
	if err != nil {
		return err
	}
	defer layout.Close()
	level := w.cfg.level(w.spec)
	tool := fmt.Sprintf("gzip level %d, %d cores", level, runtime.GOMAXPROCS(0))
	if w.spec.Name == "dd.xz" {
		tool = fmt.Sprintf("xz -%d -T0", level)
	}
	w.ui.Say(fmt.Sprintf("Compressing the disk bytes to %s (%s; %s of data, %s virtual)...",
		w.spec.Name, tool, progress.Bytes(layout.dataBytes()), progress.Bytes(layout.size)))

	// Not O_TRUNC: tempPath made the file empty, and truncating a file to
	// zero makes ext4 (auto_da_alloc) start writing all of it back on
	// close: 0.46 s of a 4 s bench-compress qcow2 run (1.2 GiB written).
	f, err := os.OpenFile(w.partial, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	add, done := w.progress(filepath.Base(w.src), layout.size)
	defer done()

	switch w.spec.Name {
	case "dd.gz", "dd.tgz":
		pieces := diskPieces(layout.size)
		if w.spec.Name == "dd.tgz" {
			head, tail, terr := tarFraming(layout.size)
			if terr != nil {
				return terr
			}
			pieces = append(append([]streamPiece{{literal: head}}, pieces...), streamPiece{literal: tail})
		}
		g := &gzipStream{level: level, layout: layout, progress: add}
		err = g.write(w.ctx, bw, pieces)
	case "dd.xz":
		x := &xzStream{level: level, layout: layout, progress: add}
		err = x.write(w.ctx, bw)
	default:
		err = fmt.Errorf("format %s: no writer", w.spec.Name)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if ctxErr := w.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("writing %s: %w", w.spec.Name, err)
	}
	w.sha256 = hex.EncodeToString(h.Sum(nil))
	return f.Close()
}

// tarFraming returns what comes before and after the disk bytes in a tar
// archive holding them as the single member TarMemberName.
func tarFraming(size int64) (head, tail []byte, err error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     TarMemberName,
		Size:     size,
		Mode:     0o644,
		// A fixed time keeps the archive a function of the disk bytes.
		ModTime: time.Unix(0, 0),
		Format:  tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, nil, err
	}
	head = bytes.Clone(buf.Bytes())
	// The member is padded to a 512-byte block; two zero blocks end the
	// archive.
	pad := (512 - size%512) % 512
	tail = make([]byte, pad+1024)
	return head, tail, nil
}
