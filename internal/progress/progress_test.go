package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// barUi is Packer's UiProgressBar in miniature: the second Close of a bar
// stops a pool that is already gone and panics, as Packer's does.
type barUi struct {
	packersdk.MockUi
	pool *struct{ bars int }
}

func (u *barUi) TrackProgress(_ string, _, _ int64, stream io.ReadCloser) io.ReadCloser {
	if u.pool == nil {
		u.pool = &struct{ bars int }{}
	}
	u.pool.bars++
	return &closeFunc{Reader: stream, close: func() error {
		u.pool.bars-- // nil pointer on a second Close once the pool is gone
		if u.pool.bars <= 0 {
			u.pool = nil
		}
		return stream.Close()
	}}
}

type closeFunc struct {
	io.Reader
	close func() error
}

func (c *closeFunc) Close() error { return c.close() }

func withTerminal(t *testing.T, terminal bool) {
	t.Helper()
	old := Terminal
	Terminal = func() bool { return terminal }
	t.Cleanup(func() { Terminal = old })
}

func TestTrackClosesPackersBarOnce(t *testing.T) {
	withTerminal(t, true)
	ui := &barUi{}
	closed := 0
	rc := Track(ui, "disk.qcow2", 3, &closeFunc{Reader: strings.NewReader("abc"), close: func() error { closed++; return nil }})
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the owner, net/http, a deferred Close
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if closed != 1 || ui.pool != nil {
		t.Fatalf("stream closed %d times, pool %v; want once and stopped", closed, ui.pool)
	}
}

// fakeClock advances by step on every reading.
func fakeClock(t *testing.T, step time.Duration) {
	t.Helper()
	cur := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := now
	now = func() time.Time { cur = cur.Add(step); return cur }
	t.Cleanup(func() { now = old })
}

func TestLinesWithoutTerminal(t *testing.T) {
	withTerminal(t, false)
	fakeClock(t, time.Second)
	ui := &packersdk.MockUi{}
	const total = 100 << 20
	rc := Track(ui, "disk.qcow2", total, io.NopCloser(bytes.NewReader(make([]byte, total))))
	buf := make([]byte, 1<<20)
	for {
		if _, err := rc.Read(buf); err == io.EOF {
			break
		}
	}
	_ = rc.Close()
	_ = rc.Close()
	if ui.TrackProgressCalled {
		t.Error("Packer's bar was used without a terminal")
	}
	var got []string
	for _, m := range ui.SayMessages {
		got = append(got, m.Message)
	}
	// One MiB a second: a line every 10 s (10% steps), the last on Close.
	if len(got) != 10 {
		t.Fatalf("%d lines, want 9 progress lines and a last one:\n%s", len(got), strings.Join(got, "\n"))
	}
	if want := "disk.qcow2: 10.0 MiB of 100.0 MiB (10%), 1.0 MiB/s, about 1m30s left"; got[0] != want {
		t.Errorf("first line %q, want %q", got[0], want)
	}
	if want := "disk.qcow2: 100.0 MiB in 1m41s (1013.9 KiB/s)"; got[9] != want {
		t.Errorf("last line %q, want %q", got[9], want)
	}
}

func TestLinesAtLeastEveryInterval(t *testing.T) {
	withTerminal(t, false)
	fakeClock(t, 5*time.Second)
	ui := &packersdk.MockUi{}
	add, done := Counter(ui, "dd.gz", 1<<40) // far from 10% per read
	for range 6 {
		add(1 << 20)
	}
	done()
	done()
	if n := len(ui.SayMessages); n != 4 { // every other add (10 s), then the last line
		var got []string
		for _, m := range ui.SayMessages {
			got = append(got, m.Message)
		}
		t.Fatalf("%d lines, want 3 + 1:\n%s", n, strings.Join(got, "\n"))
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 4 << 30: "4.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
