// Package vmslot limits how many test VMs run at once on the machine,
// across test processes: `make test` runs the unit tests, the e2e tests
// and the demo side by side, and a TCG VM keeps a core busy, so more VMs
// than cores only make every one of them slower (and their timeouts
// likelier).
//
// A slot is an exclusive flock(2) on one of N files in
// $TMPDIR/winbake-vm-slots (N = WINBAKE_VM_SLOTS, else the number of
// CPUs); the kernel releases it when its holder exits, so a killed test
// never leaks a slot. scripts/vm-slot.sh takes the same slots from the
// shell (the demo's packer build).
//
// With WINBAKE_VM_SLOT_LOG set, every hold is appended to that file as one
// line "start-ms end-ms holder" (Unix milliseconds), so `make test` can say
// how busy the slots were and who held them longest.
package vmslot

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Slots is the number of VMs that may run at once.
func Slots() int {
	if n, err := strconv.Atoi(os.Getenv("WINBAKE_VM_SLOTS")); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// Dir holds the slot files.
func Dir() string { return filepath.Join(os.TempDir(), "winbake-vm-slots") }

var (
	heldMu sync.Mutex
	held   = map[string]bool{} // test names holding a slot
)

// Acquire waits for a free slot and holds it until the test ends. Call it
// right before the part of a test that runs a VM (after t.Parallel). A test
// holds one slot however often it asks, and its subtests share it.
func Acquire(t testing.TB) {
	t.Helper()
	name := t.Name()
	heldMu.Lock()
	parts := strings.Split(name, "/")
	for i := range parts {
		if held[strings.Join(parts[:i+1], "/")] {
			heldMu.Unlock()
			return
		}
	}
	held[name] = true
	heldMu.Unlock()
	release, waited, err := acquire(Slots(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if waited > time.Second {
		t.Logf("waited %s for a VM slot", waited.Round(time.Second))
	}
	start := time.Now()
	t.Cleanup(func() {
		if err := logHold(start, time.Now(), name); err != nil {
			t.Error(err)
		}
		release()
		heldMu.Lock()
		delete(held, name)
		heldMu.Unlock()
	})
}

func acquire(slots int, poll time.Duration) (release func(), waited time.Duration, err error) {
	dir := Dir()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, 0, fmt.Errorf("vmslot: %w", err)
	}
	start := time.Now()
	for {
		for i := range slots {
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("slot.%d", i)), os.O_CREATE|os.O_RDWR, 0o666)
			if err != nil {
				return nil, 0, fmt.Errorf("vmslot: %w", err)
			}
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
				return func() { _ = f.Close() }, time.Since(start), nil
			}
			_ = f.Close()
		}
		time.Sleep(poll)
	}
}

// logHold appends one hold to the WINBAKE_VM_SLOT_LOG file, when set. A
// line is one write(2) on an O_APPEND file, so holders in other processes
// do not interleave.
func logHold(start, end time.Time, holder string) error {
	path := os.Getenv("WINBAKE_VM_SLOT_LOG")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return fmt.Errorf("vmslot: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %d %s\n", start.UnixMilli(), end.UnixMilli(), holder)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vmslot: %w", err)
	}
	return nil
}
