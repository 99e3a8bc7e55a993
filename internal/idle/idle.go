// Package idle ends a transfer that stopped moving: a Watchdog cancels a
// context when no progress was reported for its timeout, so that an upload
// to a server that stopped reading (a stalled Glance, a MAAS region that
// hangs) fails instead of waiting for the server to give up.
package idle

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// StallError is a transfer that made no progress for Timeout.
type StallError struct {
	// What is the transfer ("uploading disk.raw to image 1234").
	What    string
	Timeout time.Duration
	// Setting names the option that sets Timeout.
	Setting string
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s: no progress for %s (%s): the server stopped accepting data or answering", e.What, e.Timeout, e.Setting)
}

// Watchdog cancels its context after Timeout without a call to Touch.
type Watchdog struct {
	cancel context.CancelCauseFunc
	err    *StallError
	last   atomic.Int64 // unix nanoseconds of the last progress
	stop   chan struct{}
	once   sync.Once
	done   chan struct{}
}

// Watch returns a context derived from ctx that ends, with a *StallError
// as its cause, when w.Touch has not been called for timeout. Call Stop
// when the transfer is over.
func Watch(ctx context.Context, timeout time.Duration, what, setting string) (context.Context, *Watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &Watchdog{cancel: cancel, err: &StallError{What: what, Timeout: timeout, Setting: setting},
		stop: make(chan struct{}), done: make(chan struct{})}
	w.Touch()
	tick := timeout / 20
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, w.last.Load())) > timeout {
					cancel(w.err)
					return
				}
			}
		}
	}()
	return ctx, w
}

// Touch records progress.
func (w *Watchdog) Touch() { w.last.Store(time.Now().UnixNano()) }

// Stop ends the watch; the context stays as it is.
func (w *Watchdog) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// Err returns the *StallError when the watchdog fired, else nil.
func (w *Watchdog) Err(ctx context.Context) error {
	if cause := context.Cause(ctx); cause == w.err {
		return w.err
	}
	return nil
}

// Reader touches the watchdog on every read that returns data: the server
// taking the bytes is the progress of an upload body.
func (w *Watchdog) Reader(r io.Reader) io.Reader { return &touchingReader{r: r, w: w} }

type touchingReader struct {
	r io.Reader
	w *Watchdog
}

func (t *touchingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.w.Touch()
	}
	return n, err
}
