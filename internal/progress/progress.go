// Package progress reports long transfers (uploads, downloads, compression)
// to the person running the build.
//
// When Packer draws progress bars (it runs in a terminal), Track hands the
// stream to Packer's bar. Packer's bar must be closed exactly once: its
// Close stops the shared bar pool when the last bar ends, and a second Close
// stops a pool that is already gone (a nil pointer panic in Packer's
// UiProgressBar, which takes the whole build down). Track's Close is
// idempotent, so every caller may close, and net/http, which closes request
// bodies itself, may too.
//
// When there is no terminal (CI logs, -machine-readable, a build started in
// the background), Packer's bar draws nothing, so Track writes a progress
// line instead: at most every Interval, and only when Step of the total or
// Interval has passed since the last line, with bytes, rate and time left,
// and a last line when the stream is closed.
package progress

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

const (
	// Interval is the most often a line is written, and the longest a
	// transfer goes without one.
	Interval = 10 * time.Second
	// Step is the share of the total after which a line is written
	// early (but never more often than MinInterval).
	Step = 0.10
	// MinInterval keeps a fast transfer from printing ten lines a second.
	MinInterval = 2 * time.Second
)

// Terminal reports whether Packer draws progress bars for this build:
// Packer (main.go) draws them when it can open /dev/tty, the controlling
// terminal it shares with its plugins; a plugin opening it succeeds and
// fails in the same cases.
var Terminal = func() bool {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	_ = tty.Close()
	return true
}

// now is the clock, replaced in tests.
var now = time.Now

// Track reports the reading of stream, total bytes long, under name. The
// returned ReadCloser's Close closes stream and may be called any number of
// times.
func Track(ui packersdk.Ui, name string, total int64, stream io.ReadCloser) io.ReadCloser {
	if Terminal() {
		return &onceCloser{Reader: ui.TrackProgress(name, 0, total, stream)}
	}
	l := newLines(ui, name, total)
	return &onceCloser{
		Reader: &countingReader{r: stream, add: l.add},
		close: func() error {
			err := stream.Close()
			l.finish()
			return err
		},
	}
}

// Counter reports work that is not a stream (bytes compressed by several
// goroutines): add counts done bytes, done ends the report (idempotent).
func Counter(ui packersdk.Ui, name string, total int64) (add func(int64), done func()) {
	rc := Track(ui, name, total, io.NopCloser(endlessReader{}))
	scratch := make([]byte, 1<<20)
	var mu sync.Mutex
	add = func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		for n > 0 {
			k := int(min(n, int64(len(scratch))))
			_, _ = rc.Read(scratch[:k])
			n -= int64(k)
		}
	}
	return add, func() { _ = rc.Close() }
}

// endlessReader "reads" whatever is asked of it; only the count matters.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) { return len(p), nil }

// onceCloser closes at most once; later calls return the first result.
type onceCloser struct {
	io.Reader
	close func() error // nil: the Reader is an io.Closer
	once  sync.Once
	err   error
}

func (c *onceCloser) Close() error {
	c.once.Do(func() {
		if c.close != nil {
			c.err = c.close()
		} else if cl, ok := c.Reader.(io.Closer); ok {
			c.err = cl.Close()
		}
	})
	return c.err
}

type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

// lines writes the progress lines of one transfer.
type lines struct {
	ui    packersdk.Ui
	name  string
	total int64

	mu       sync.Mutex
	start    time.Time
	last     time.Time
	lastDone int64
	done     int64
	finished bool
}

func newLines(ui packersdk.Ui, name string, total int64) *lines {
	t := now()
	return &lines{ui: ui, name: filepath.Base(name), total: total, start: t, last: t}
}

func (l *lines) add(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done += n
	t := now()
	since := t.Sub(l.last)
	stepped := l.total > 0 && float64(l.done-l.lastDone) >= Step*float64(l.total)
	if since < MinInterval || (since < Interval && !stepped) || l.done >= l.total && l.total > 0 {
		return
	}
	l.last, l.lastDone = t, l.done
	l.ui.Say(l.line(t))
}

// line is "name: 1.2 GiB of 4.0 GiB (30%), 85.3 MiB/s, about 28s left".
func (l *lines) line(t time.Time) string {
	elapsed := t.Sub(l.start)
	rate := float64(l.done) / max(elapsed.Seconds(), 1e-3)
	if l.total <= 0 {
		return fmt.Sprintf("%s: %s, %s/s", l.name, Bytes(l.done), Bytes(int64(rate)))
	}
	s := fmt.Sprintf("%s: %s of %s (%d%%), %s/s", l.name, Bytes(l.done), Bytes(l.total),
		l.done*100/l.total, Bytes(int64(rate)))
	if rate > 0 && l.done < l.total {
		left := time.Duration(float64(l.total-l.done) / rate * float64(time.Second))
		s += fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	return s
}

func (l *lines) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return
	}
	l.finished = true
	elapsed := now().Sub(l.start)
	rate := float64(l.done) / max(elapsed.Seconds(), 1e-3)
	l.ui.Say(fmt.Sprintf("%s: %s in %s (%s/s)", l.name, Bytes(l.done),
		elapsed.Round(100*time.Millisecond), Bytes(int64(rate))))
}

// Bytes formats n in binary units: "512 B", "1.5 KiB", "4.0 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
