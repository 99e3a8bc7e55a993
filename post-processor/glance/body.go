package glance

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// hashingBody is the upload body: it reads the image file and reports
// progress, and MD5 (Glance's checksum) and SHA-512 (Glance's os_hash_value)
// of every byte are computed on two goroutines beside the upload, so hashing
// does not slow the stream down. It is an io.Seeker, so gophercloud can
// rewind it and send it again after logging in anew (a token that expired
// mid-upload); rewinding restarts the hashes and the progress.
type hashingBody struct {
	file     *os.File
	size     int64
	progress func(size int64) io.ReadCloser // wraps the file for a progress bar; nil for none

	// mu orders Read, Seek and Close: net/http may still read a body on
	// its own goroutine after the request has returned.
	mu     sync.Mutex
	reader io.ReadCloser
	// touch, when set, is called when Read returns data: the upload made
	// progress.
	touch  func()
	md5    *asyncHash
	sha512 *asyncHash
	read   int64
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
	if b.md5 != nil {
		b.md5.finish()
		b.sha512.finish()
	}
	b.md5, b.sha512, b.read = newAsyncHash(md5.New()), newAsyncHash(sha512.New()), 0
	if b.progress != nil {
		b.reader = b.progress(b.size)
	} else {
		b.reader = nopCloser{b.file}
	}
}

func (b *hashingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.reader.Read(p)
	if n > 0 {
		if b.touch != nil {
			b.touch()
		}
		b.md5.write(p[:n])
		b.sha512.write(p[:n])
		b.read += int64(n)
	}
	return n, err
}

// setTouch sets the progress callback.
func (b *hashingBody) setTouch(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.touch = f
}

// Seek supports only rewinding to the start, which is what a retry needs.
func (b *hashingBody) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return 0, fmt.Errorf("upload body: only a rewind to the start is supported")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	b.restart()
	return 0, nil
}

// Close ends the progress bar and the hashing goroutines; the file is
// closed by its owner.
func (b *hashingBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.md5.finish()
	b.sha512.finish()
	if b.reader != nil {
		return b.reader.Close()
	}
	return nil
}

// sums returns the hex MD5 and SHA-512 of what was read, and whether the
// whole file was read.
func (b *hashingBody) sums() (md5hex, sha512hex string, complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return hex.EncodeToString(b.md5.sum()), hex.EncodeToString(b.sha512.sum()), b.read == b.size
}

// asyncHash feeds copies of the data to a hash on its own goroutine. At most
// queueDepth chunks wait, which bounds the memory used.
type asyncHash struct {
	h      hash.Hash
	ch     chan []byte
	done   chan struct{}
	pool   sync.Pool
	mu     sync.Mutex
	closed bool
}

const (
	queueDepth = 64
	chunkSize  = 64 << 10
)

func newAsyncHash(h hash.Hash) *asyncHash {
	a := &asyncHash{h: h, ch: make(chan []byte, queueDepth), done: make(chan struct{})}
	a.pool.New = func() any { b := make([]byte, chunkSize); return &b }
	go func() {
		defer close(a.done)
		for buf := range a.ch {
			a.h.Write(buf)
			if cap(buf) == chunkSize {
				buf = buf[:chunkSize]
				a.pool.Put(&buf)
			}
		}
	}()
	return a
}

func (a *asyncHash) write(p []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	for len(p) > 0 {
		buf := *(a.pool.Get().(*[]byte))
		n := copy(buf, p)
		a.ch <- buf[:n]
		p = p[n:]
	}
}

// finish waits until everything written is hashed.
func (a *asyncHash) finish() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.ch)
	}
	a.mu.Unlock()
	<-a.done
}

func (a *asyncHash) sum() []byte {
	a.finish()
	return a.h.Sum(nil)
}
