// Package diskcheck checks a disk image file before a post-processor trusts
// it: the image format's own consistency check, the size and SHA-256 a
// manifest or an artifact recorded for it, and the integrity of the
// compressed streams MAAS deploys. A damaged input is refused with the
// file and what is wrong with it, before anything is written or uploaded.
//
// What each format gets:
//
//   - qcow2, vhdx, vmdk, vdi, qed, parallels: `qemu-img check`, which
//     walks the format's metadata (L1/L2 tables, refcounts, BAT, grain
//     tables) and finds clusters that lie beyond the end of a truncated
//     file, overlapping or unreferenced metadata, and bad table offsets.
//   - raw: there is no metadata to check. The file must not be empty and
//     must be a whole number of 512-byte sectors; beyond that only a
//     recorded size and SHA-256 can tell a damaged raw disk from a good
//     one.
//   - dd.gz, dd.tgz: read through to the end; gzip's trailer carries the
//     CRC-32 and length of every member, so a truncated or altered stream
//     fails. dd.xz: `xz -t`, which checks the stream's own check (CRC64 by
//     default).
package diskcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// SectorSize is the unit a raw disk is made of.
const SectorSize = 512

// Image is a disk image file that passed its check.
type Image struct {
	Path string
	// Format is qemu-img's name of the format found in the content
	// (qcow2, raw, vhdx, vmdk, vpc, ...).
	Format      string
	VirtualSize int64
	// Size is the size of the file.
	Size int64
}

// checked are the formats `qemu-img check` knows how to check.
var checked = map[string]bool{
	"qcow2": true, "qed": true, "vdi": true, "vhdx": true, "vmdk": true, "parallels": true,
}

// Check reads the format of the disk image at path from its content and
// runs the format's check. what names the file in errors, e.g. "input
// disk image".
func Check(ctx context.Context, what, path string) (*Image, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s %s is empty (0 bytes): it was never written or was truncated; rebuild it or restore a good copy", what, path)
	}
	img := &Image{Path: path, Size: st.Size()}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	out, err := qemuImg(ctx, "info", "--output=json", path)
	if err != nil {
		return nil, fmt.Errorf("%s %s cannot be opened as a disk image: %w", what, path, err)
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Format == "" {
		return nil, fmt.Errorf("%s %s: qemu-img info gave no format (%v): %s", what, path, err, firstLine(out))
	}
	img.Format, img.VirtualSize = info.Format, info.VirtualSize
	switch {
	case info.Format == "raw":
		if st.Size()%SectorSize != 0 {
			return nil, fmt.Errorf("%s %s is a raw disk of %d bytes, not a whole number of %d-byte sectors: it was cut short; rebuild it or restore a good copy",
				what, path, st.Size(), SectorSize)
		}
	case checked[info.Format]:
		if err := checkFormat(ctx, path, info.Format); err != nil {
			return nil, fmt.Errorf("%s %s is a damaged %s image: %w; it was not used: rebuild it or restore a good copy", what, path, info.Format, err)
		}
	}
	return img, nil
}

// checkFormat runs `qemu-img check` on a file of a known format. Its exit
// status says what it found: 0 nothing, 2 corruptions, 3 only leaked
// clusters (space that no data uses: the data is intact), 1 the check
// could not be completed.
func checkFormat(ctx context.Context, path, format string) error {
	cmd := exec.CommandContext(ctx, "qemu-img", "check", "--output=json", "-f", format, path)
	var stdout bytes.Buffer
	stderr := &headBuffer{limit: 4096}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	err := cmd.Run()
	var report struct {
		Corruptions int `json:"corruptions"`
		CheckErrors int `json:"check-errors"`
		Leaks       int `json:"leaks"`
	}
	_ = json.Unmarshal(stdout.Bytes(), &report)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return fmt.Errorf("qemu-img check found %d corruption(s) (%s)", report.Corruptions, firstLine(stderr.Bytes()))
	case errors.As(err, &exit):
		return fmt.Errorf("qemu-img check could not complete (exit %d, %d check error(s)): %s", exit.ExitCode(), report.CheckErrors, firstLine(stderr.Bytes()))
	}
	return fmt.Errorf("running qemu-img check: %w (install qemu-utils)", err)
}

// Recorded compares the file's size and, when sha256 is given, its
// SHA-256 with what recordedIn (a manifest, an artifact) says. A size of
// 0 or less is not compared.
func Recorded(ctx context.Context, path string, size int64, sha256Hex, recordedIn string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if size > 0 && st.Size() != size {
		return fmt.Errorf("%s has %d bytes, but %s records %d bytes: the file changed or was cut short after it was written; rebuild it or restore a good copy",
			path, st.Size(), recordedIn, size)
	}
	if sha256Hex == "" {
		return nil
	}
	sum, _, err := FileSHA256(ctx, path)
	if err != nil {
		return err
	}
	if !strings.EqualFold(sum, sha256Hex) {
		return fmt.Errorf("%s has SHA-256 %s, but %s records %s: the file changed after it was written; rebuild it or restore a good copy",
			path, sum, recordedIn, strings.ToLower(sha256Hex))
	}
	return nil
}

// FileSHA256 returns the hex SHA-256 and size of the file, read once;
// cancelling ctx stops the read.
func FileSHA256(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, &ctxReader{ctx: ctx, r: f})
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func qemuImg(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "qemu-img", args...)
	stderr := &headBuffer{limit: 4096}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("qemu-img %s: %s", args[0], firstLine(stderr.Bytes()))
		}
		return nil, fmt.Errorf("running qemu-img: %w (install qemu-utils)", err)
	}
	return out, nil
}

// firstLine is the first non-empty line of b, for error messages (qemu-img
// check prints one line per damaged cluster).
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return strings.TrimPrefix(l, "qemu-img: ")
		}
	}
	return "no message"
}

// headBuffer keeps the first limit bytes written to it.
type headBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.limit - h.buf.Len(); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		h.buf.Write(p[:room])
	}
	return len(p), nil
}

func (h *headBuffer) Bytes() []byte { return h.buf.Bytes() }

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
