package glance

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A retry rewinds the body: the hashes then cover the data once, not twice.
func TestHashingBodyRewindRestartsTheHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d")
	data := []byte("winbake glance body test data, long enough to read twice")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := newHashingBody(f, int64(len(data)), nil)
	if _, err := io.CopyN(io.Discard, b, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Fatal(err)
	}
	m, s, complete := b.sums()
	wm, ws := md5.Sum(data), sha512.Sum512(data)
	if !complete || m != hex.EncodeToString(wm[:]) || s != hex.EncodeToString(ws[:]) {
		t.Errorf("after a rewind: complete %v md5 %s sha512 %s…; want the sums of the data", complete, m, s[:16])
	}
	if _, err := b.Seek(5, io.SeekStart); err == nil {
		t.Error("Seek to 5 succeeded; only a rewind is supported")
	}
}
