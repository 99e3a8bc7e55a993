package agent

import (
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// copyHashing copies src to dst and hashes the bytes, with the reading, the
// writing and the hashing each on a goroutine of its own, so that a
// download runs at the speed of the slowest of the three rather than of
// their sum. seen is called with each run of bytes read, in order.
func copyHashing(dst io.Writer, src io.Reader, h hash.Hash, seen func(n int)) (int64, error) {
	const (
		chunkSize = 1 << 20
		chunks    = 4
	)
	type chunk struct {
		b       []byte
		pending atomic.Int32 // consumers still to see b
	}
	free := make(chan *chunk, chunks)
	for range chunks {
		free <- &chunk{b: make([]byte, chunkSize)}
	}
	release := func(c *chunk) {
		if c.pending.Add(-1) == 0 {
			free <- c
		}
	}
	toWrite := make(chan *chunk, chunks)
	toHash := make(chan *chunk, chunks)
	var (
		wg       sync.WaitGroup
		writeErr error
		failed   atomic.Bool
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for c := range toWrite {
			if !failed.Load() {
				if _, err := dst.Write(c.b); err != nil {
					writeErr = err
					failed.Store(true)
				}
			}
			release(c)
		}
	}()
	go func() {
		defer wg.Done()
		for c := range toHash {
			h.Write(c.b)
			release(c)
		}
	}()

	var n int64
	var readErr error
	for !failed.Load() {
		c := <-free
		k, err := io.ReadFull(src, c.b[:cap(c.b)])
		if k > 0 {
			c.b = c.b[:k]
			c.pending.Store(2)
			n += int64(k)
			seen(k)
			toWrite <- c
			toHash <- c
		} else {
			free <- c
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(toWrite)
	close(toHash)
	wg.Wait()
	if writeErr != nil {
		return n, writeErr
	}
	return n, readErr
}
