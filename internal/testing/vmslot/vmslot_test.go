package vmslot

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Never more holders than slots, and every waiter gets one in the end.
func TestAtMostSlotsHoldersAtOnce(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	const slots, workers = 2, 6
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, _, err := acquire(slots, time.Millisecond)
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != slots {
		t.Errorf("peak %d holders, want exactly %d", p, slots)
	}
}

// A test asking twice, and its subtests, hold one slot.
func TestOneSlotPerTestTree(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv("WINBAKE_VM_SLOTS", "1")
	Acquire(t)
	Acquire(t) // would wait forever with one slot if it took another
	t.Run("sub", func(t *testing.T) { Acquire(t) })
}

// A hold is logged to WINBAKE_VM_SLOT_LOG with its times and holder.
func TestHoldIsLogged(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	logFile := filepath.Join(t.TempDir(), "holds.log")
	t.Setenv("WINBAKE_VM_SLOT_LOG", logFile)
	before := time.Now().UnixMilli()
	t.Run("holder", func(t *testing.T) {
		Acquire(t)
		time.Sleep(20 * time.Millisecond)
	})
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var start, end int64
	var holder string
	if n, err := fmt.Sscanf(string(b), "%d %d %s\n", &start, &end, &holder); n != 3 || err != nil {
		t.Fatalf("log %q: %v", b, err)
	}
	if holder != "TestHoldIsLogged/holder" || start < before || end-start < 20 {
		t.Errorf("log %q: want TestHoldIsLogged/holder held for at least 20 ms from %d", b, before)
	}
}
