package glance

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
)

// hashingBody is the upload body: it reads the image file, feeds every byte
// to MD5 (Glance's checksum) and SHA-512 (Glance's os_hash_value) and
// reports progress. It is an io.Seeker, so gophercloud can rewind it and
// send it again after logging in anew (a token that expired mid-upload);
// rewinding restarts the hashes and the progress.
type hashingBody struct {
	file     *os.File
	size     int64
	progress func(size int64) io.ReadCloser // wraps the file for a progress bar; nil for none

	reader io.ReadCloser
	md5    hash.Hash
	sha512 hash.Hash
	read   int64
	passes int
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func newHashingBody(f *os.File, size int64, progress func(size int64) io.ReadCloser) *hashingBody {
	b := &hashingBody{file: f, size: size, progress: progress}
	b.restart()
	return b
}

func (b *hashingBody) restart() {
	if b.reader != nil {
		_ = b.reader.Close()
	}
	b.md5, b.sha512, b.read = md5.New(), sha512.New(), 0
	b.passes++
	if b.progress != nil {
		b.reader = b.progress(b.size)
	} else {
		b.reader = nopCloser{b.file}
	}
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.reader.Read(p)
	if n > 0 {
		b.md5.Write(p[:n])
		b.sha512.Write(p[:n])
		b.read += int64(n)
	}
	return n, err
}

// Seek supports only rewinding to the start, which is what a retry needs.
func (b *hashingBody) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return 0, fmt.Errorf("upload body: only a rewind to the start is supported")
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	b.restart()
	return 0, nil
}

// Close ends the progress bar; the file is closed by its owner.
func (b *hashingBody) Close() error {
	if b.reader != nil {
		return b.reader.Close()
	}
	return nil
}

// sums returns the hex MD5 and SHA-512 of what was read, and whether the
// whole file was read.
func (b *hashingBody) sums() (md5hex, sha512hex string, complete bool) {
	return hex.EncodeToString(b.md5.Sum(nil)), hex.EncodeToString(b.sha512.Sum(nil)), b.read == b.size
}
