package agent

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestCopyHashing copies inputs of several sizes (none, less than a chunk,
// several chunks and a part) and checks the bytes, the digest and the
// counted progress.
func TestCopyHashing(t *testing.T) {
	for _, size := range []int{0, 1, 1 << 20, 5<<20 + 12345} {
		src := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(size)}).Read(src)
		var dst bytes.Buffer
		h := sha256.New()
		seen := 0
		// iotest-style short reads: the copy fills its chunks anyway.
		n, err := copyHashing(&dst, &shortReader{r: bytes.NewReader(src)}, h, func(k int) { seen += k })
		if err != nil || n != int64(size) || seen != size {
			t.Fatalf("size %d: n %d seen %d err %v", size, n, seen, err)
		}
		if !bytes.Equal(dst.Bytes(), src) {
			t.Errorf("size %d: the copy differs from the source", size)
		}
		want := sha256.Sum256(src)
		if !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("size %d: wrong digest", size)
		}
	}
}

// TestCopyHashingErrors: a failing write stops the copy and is the error;
// a failing read is the error.
func TestCopyHashingErrors(t *testing.T) {
	diskFull := errors.New("There is not enough space on the disk.")
	src := bytes.NewReader(make([]byte, 64<<20))
	w := &fullDiskWriter{after: 2 << 20, err: diskFull}
	n, err := copyHashing(w, src, sha256.New(), func(int) {})
	if !errors.Is(err, diskFull) {
		t.Fatalf("write failure: err %v", err)
	}
	if n >= 64<<20 {
		t.Errorf("the copy read all %d bytes after the write failed", n)
	}
	broken := errors.New("connection reset by peer")
	_, err = copyHashing(io.Discard, io.MultiReader(bytes.NewReader(make([]byte, 3<<20)), &errReader{broken}), sha256.New(), func(int) {})
	if !errors.Is(err, broken) {
		t.Errorf("read failure: err %v", err)
	}
}

type shortReader struct{ r io.Reader }

func (s *shortReader) Read(p []byte) (int, error) {
	if len(p) > 7000 {
		p = p[:7000]
	}
	return s.r.Read(p)
}

type fullDiskWriter struct {
	after, n int
	err      error
}

func (f *fullDiskWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.after {
		return 0, f.err
	}
	f.n += len(p)
	return len(p), nil
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
