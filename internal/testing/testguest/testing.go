package testguest

import (
	"fmt"
	"log"
	"sync"
	"testing"
)

// StartForTest creates and starts a Guest for a test: StateDir defaults to
// t.TempDir(), anything the stand-in does not understand fails the test
// (Failf is t.Errorf, for the simulated Windows and the WinRM server),
// command and power lines go to t.Logf, and Close runs at cleanup. Any
// setup error is fatal.
func StartForTest(t testing.TB, opts Options) *Guest {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	tl := &testLog{t: t}
	if opts.Failf == nil {
		opts.Failf = tl.errorf
	}
	if opts.Logf == nil {
		opts.Logf = tl.logf
	}
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		g.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("closing the guest: %v", err)
		}
		tl.finish()
	})
	return g
}

// testLog forwards to t until the test's cleanup has closed the guest;
// later calls (a timer racing Close) go to the log instead of panicking.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (l *testLog) errorf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		log.Printf("testguest: after the test ended: "+format, args...)
		return
	}
	l.t.Helper()
	l.t.Errorf(format, args...)
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.t.Logf("%s", fmt.Sprintf(format, args...))
}

func (l *testLog) finish() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}
