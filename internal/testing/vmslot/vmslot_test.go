package vmslot

import (
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
