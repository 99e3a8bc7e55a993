package qemuvm

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sys/unix"
)

// freeRange returns n consecutive ports on 127.0.0.1 that are free now,
// listening on none.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for base := 21000 + os.Getpid()%2000; base < 60000; base += n {
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// portLocks lists the lock files in PACKER_CACHE_DIR/port.
func portLocks(t *testing.T, cache string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(cache, "port"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A build reserves a port of the range and, once done, leaves no lock
// file behind (successful builds included).
func TestStepForwardPortLeavesNoLockFile(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PACKER_CACHE_DIR", cache)
	base := freeRange(t, 4)
	state, _ := mockState(t)
	step := &StepForwardPort{Min: base, Max: base + 4}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	port := state.Get(StateHostPort).(int)
	if port < base || port >= base+4 {
		t.Fatalf("port %d outside %d-%d", port, base, base+3)
	}
	if locks := portLocks(t, cache); len(locks) != 1 || locks[0] != strconv.Itoa(port) {
		t.Fatalf("lock files while reserved: %v, want [%d]", locks, port)
	}
	// The port is free for QEMU to bind.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("the reserved port cannot be bound: %v", err)
	}
	l.Close()
	step.Cleanup(state)
	if locks := portLocks(t, cache); len(locks) != 0 {
		t.Errorf("lock files left after the build: %v", locks)
	}
}

// Every port of the range is busy (bound by other programs, or reserved by
// another Packer build's lock): the step tries each once and fails,
// naming the range and why, and leaves no lock file of its own.
func TestStepForwardPortGivesUpOnABusyRange(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PACKER_CACHE_DIR", cache)
	base := freeRange(t, 3)
	for p := base; p < base+2; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	// The third is reserved by another build, which holds its lock.
	if err := os.MkdirAll(filepath.Join(cache, "port"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(cache, "port", strconv.Itoa(base+2))
	f, err := os.OpenFile(other, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	state, _ := mockState(t)
	step := &StepForwardPort{Min: base, Max: base + 3}
	done := make(chan multistep.StepAction, 1)
	go func() { done <- step.Run(context.Background(), state) }()
	var action multistep.StepAction
	select {
	case action = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the step still looks for a free port after a minute")
	}
	if action != multistep.ActionHalt {
		t.Fatal("a fully busy range did not fail the build")
	}
	msg := state.Get("error").(error).Error()
	for _, want := range []string{"host_port_min/host_port_max", "127.0.0.1:" + strconv.Itoa(base) + "-" + strconv.Itoa(base+2),
		"2 in use by other programs", "1 reserved by other Packer builds", "widen the range"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	step.Cleanup(state)
	if locks := portLocks(t, cache); len(locks) != 1 || locks[0] != strconv.Itoa(base+2) {
		t.Errorf("lock files after the failed reservation: %v; want only the other build's %d", locks, base+2)
	}
}

// A stale lock file (left by an older Packer plugin, nobody holding it) is
// taken over and removed at the end.
func TestStepForwardPortTakesOverStaleLockFiles(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PACKER_CACHE_DIR", cache)
	base := freeRange(t, 1)
	if err := os.MkdirAll(filepath.Join(cache, "port"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "port", strconv.Itoa(base)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state, _ := mockState(t)
	step := &StepForwardPort{Min: base, Max: base + 1}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	step.Cleanup(state)
	if locks := portLocks(t, cache); len(locks) != 0 {
		t.Errorf("lock files left: %v", locks)
	}
}
