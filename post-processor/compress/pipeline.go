package compress

import (
	"context"
	"os"
	"sync"
)

// orderedWork runs prepare on each job feed emits, on workers goroutines
// at once, and hands the prepared jobs to collect one at a time in the
// order they were emitted: reading and compressing run on every core while
// the output is written in guest order. The first error (or the context's)
// stops the feed and is returned once every goroutine has ended.
func orderedWork[J any](ctx context.Context, workers int, feed func(emit func(J) bool), prepare, collect func(J) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct {
		job  J
		err  error
		done chan struct{}
	}
	workers = max(workers, 1)
	work := make(chan *slot)
	// A few jobs per worker in flight keep every worker busy while the
	// collector writes.
	ordered := make(chan *slot, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				s.err = prepare(s.job)
				close(s.done)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
		feed(func(j J) bool {
			s := &slot{job: j, done: make(chan struct{})}
			select {
			case ordered <- s:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- s:
				return true
			case <-ctx.Done():
				s.err = ctx.Err()
				close(s.done)
				return false
			}
		})
	}()

	var err error
	for s := range ordered {
		if err != nil {
			continue // let the feeder finish
		}
		select {
		case <-s.done:
			err = s.err
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err == nil {
			err = collect(s.job)
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// gatherWriter writes to a file at given offsets, gathering contiguous
// writes into large ones.
type gatherWriter struct {
	file    *os.File
	pending []byte // bytes to write at at, contiguous
	at      int64
}

// gatherMax is the most bytes held before writing.
const gatherMax = 4 << 20

func (g *gatherWriter) writeAt(b []byte, off int64) error {
	if len(g.pending) > 0 && off != g.at+int64(len(g.pending)) || len(g.pending)+len(b) > gatherMax {
		if err := g.flush(); err != nil {
			return err
		}
	}
	if len(g.pending) == 0 {
		g.at = off
	}
	g.pending = append(g.pending, b...)
	return nil
}

// held returns the n bytes at off when they are still held, not written.
func (g *gatherWriter) held(off, n int64) ([]byte, bool) {
	if off >= g.at && off+n <= g.at+int64(len(g.pending)) {
		return g.pending[off-g.at : off-g.at+n], true
	}
	return nil, false
}

func (g *gatherWriter) flush() error {
	if len(g.pending) == 0 {
		return nil
	}
	if _, err := g.file.WriteAt(g.pending, g.at); err != nil {
		return err
	}
	g.pending = g.pending[:0]
	return nil
}
