package idle

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// A transfer that stops: the context ends with the StallError as cause.
func TestWatchdogFiresWithoutProgress(t *testing.T) {
	ctx, w := Watch(context.Background(), 50_000_000, "uploading x", "upload_idle_timeout")
	defer w.Stop()
	<-ctx.Done()
	var stall *StallError
	if err := w.Err(ctx); !errors.As(err, &stall) || !strings.Contains(err.Error(), "uploading x: no progress for 50ms (upload_idle_timeout)") {
		t.Fatalf("Err = %v", err)
	}
}

// A parent cancelled (Ctrl-C) is no stall; reads touch the watchdog.
func TestWatchdogParentCancelAndReader(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, w := Watch(parent, 1<<62, "x", "s")
	before := w.last.Load()
	if _, err := io.ReadAll(w.Reader(strings.NewReader("data"))); err != nil {
		t.Fatal(err)
	}
	if w.last.Load() < before {
		t.Error("a read did not record progress")
	}
	cancel()
	<-ctx.Done()
	w.Stop()
	if err := w.Err(ctx); err != nil {
		t.Errorf("Err after the parent's cancel = %v, want nil", err)
	}
}
