package diskcheck

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// CheckStream reads a MAAS disk image (winbake-compress format dd.gz,
// dd.tgz, dd.xz or raw) through to its end, checking the compressed
// stream's integrity on the way, and returns the file's SHA-256 and size
// from the same read. A damaged stream's error comes with the file's
// SHA-256 and size too, as far as the file could be read. The read ends
// when ctx is cancelled.
func CheckStream(ctx context.Context, path, format string) (sha256Hex string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if st.Size() == 0 {
		return "", 0, fmt.Errorf("%s is empty (0 bytes): it was never written or was truncated", path)
	}
	h := sha256.New()
	counted := &countingReader{r: &ctxReader{ctx: ctx, r: f}}
	in := io.TeeReader(counted, h)
	switch format {
	case "dd.gz", "dd.tgz":
		err = readGzip(in, format == "dd.tgz")
	case "dd.xz":
		err = testXz(ctx, in)
	case "raw":
		if st.Size()%SectorSize != 0 {
			return "", 0, fmt.Errorf("%s is a raw disk of %d bytes, not a whole number of %d-byte sectors: it was cut short", path, st.Size(), SectorSize)
		}
	default:
		return "", 0, fmt.Errorf("diskcheck: no stream check for format %q", format)
	}
	if err == nil {
		// Whatever the decoder left unread (none for a well-formed
		// stream) still counts for the hash.
		_, err = io.Copy(io.Discard, in)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", 0, ctx.Err()
		}
		// The hash of the whole file still tells a file changed since
		// it was recorded from one recorded broken.
		streamErr := fmt.Errorf("%s is not an intact %s stream: %w; it was not used: rebuild it with winbake-compress", path, format, err)
		if _, err := io.Copy(io.Discard, in); err != nil {
			return "", 0, streamErr
		}
		return hex.EncodeToString(h.Sum(nil)), counted.n, streamErr
	}
	return hex.EncodeToString(h.Sum(nil)), counted.n, nil
}

// readGzip decompresses every gzip member to its end: each member's
// trailer holds the CRC-32 and length of its data, which the reader
// checks. With tarball, the data must be a tar archive with one regular
// member (winbake-compress's dd.tgz).
func readGzip(r io.Reader, tarball bool) error {
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		return fmt.Errorf("gzip header: %w", err)
	}
	defer func() { _ = zr.Close() }()
	if !tarball {
		_, err = io.Copy(io.Discard, zr)
		return gzipError(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		return fmt.Errorf("tar header: %w", gzipError(err))
	}
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("tar member %q is not a regular file", hdr.Name)
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("tar member %q: %w", hdr.Name, gzipError(err))
	}
	if next, err := tr.Next(); err == nil {
		return fmt.Errorf("tar archive has a second member %q; MAAS deploys the first", next.Name)
	} else if err != io.EOF {
		return fmt.Errorf("end of the tar archive: %w", gzipError(err))
	}
	_, err = io.Copy(io.Discard, zr)
	return gzipError(err)
}

func gzipError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the gzip stream ends early (truncated file): %w", err)
	}
	return err
}

// testXz runs `xz -t` on r: it decodes the stream and checks its integrity
// check without writing anything.
func testXz(ctx context.Context, r io.Reader) error {
	cmd := exec.CommandContext(ctx, "xz", "-t", "-")
	cmd.Stdin = r
	stderr := &headBuffer{limit: 4096}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("xz -t: %s", firstLine(stderr.Bytes()))
		}
		return fmt.Errorf("running xz: %w (install xz-utils)", err)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
