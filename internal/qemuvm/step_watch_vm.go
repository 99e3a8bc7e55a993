package qemuvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// State keys of the VM watch.
const (
	// StateStopBuild is the build's context.CancelFunc: the builder (or
	// post-processor) runs its steps under a context it can end itself, so
	// that a step noticing a fatal fault in the background ends the step
	// that is waiting, whatever it waits for.
	StateStopBuild = "stop_build"
	// StateVMWatch is the *VMWatch of StepWatchVM.
	StateVMWatch = "vm_watch"
)

// serialTailLines is how many serial console lines the error of a VM that
// exited quotes.
const serialTailLines = 8

// VMWatch tells StepWatchVM that the VM is about to exit on purpose.
type VMWatch struct {
	mu       sync.Mutex
	expected bool
	exitErr  error
	exited   bool
}

// Expect marks the coming exit of the VM as intended (a shutdown the
// build asked for).
func (w *VMWatch) Expect() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expected = true
}

// Expected reports whether the VM's exit was announced.
func (w *VMWatch) Expected() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.expected
}

// ExpectVMExit marks the VM's exit as intended, when the build watches it.
func ExpectVMExit(state multistep.StateBag) {
	if w, ok := state.Get(StateVMWatch).(*VMWatch); ok {
		w.Expect()
	}
}

// StepWatchVM waits in the background for QEMU to exit. An exit nobody
// asked for (ExpectVMExit) — QEMU crashed or was killed, the guest powered
// itself off — fails the build at once: whatever step runs (the wait for
// WinRM, a provisioner) is cancelled through StateStopBuild, and the error
// gives QEMU's exit status, its stderr and the last lines of the serial
// console.
//
// Uses state: "ui", StateDriver, StateStopBuild.
// Produces state: StateVMWatch; "error" when the VM exited.
type StepWatchVM struct {
	// SerialLog is the serial console file whose last lines the error
	// quotes.
	SerialLog string
	// PowerOffEnds: the guest powering itself off (QEMU exiting with
	// status 0) is how the build ends (communicator "none"); only a QEMU
	// that fails or is killed fails the build.
	PowerOffEnds bool

	watch  *VMWatch
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *StepWatchVM) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	driver := state.Get(StateDriver).(Driver)
	stopBuild, _ := state.Get(StateStopBuild).(context.CancelFunc)
	s.watch = &VMWatch{}
	state.Put(StateVMWatch, s.watch)
	// Not the step's context: the watch ends in Cleanup, not when the
	// build is cancelled (a cancelled build stops QEMU itself).
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		err := driver.WaitVM(ctx)
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return // Cleanup ended the watch
		}
		s.watch.mu.Lock()
		if err == nil && s.PowerOffEnds {
			s.watch.expected = true
		}
		expected := s.watch.expected
		s.watch.exited, s.watch.exitErr = true, err
		s.watch.mu.Unlock()
		if !expected && stopBuild != nil {
			stopBuild()
		}
	}()
	return multistep.ActionContinue
}

// Cleanup stops watching; when the VM exited unexpectedly, the build's
// error says so, whatever a step reported meanwhile.
func (s *StepWatchVM) Cleanup(state multistep.StateBag) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel = nil
	s.watch.mu.Lock()
	exited, expected, exitErr := s.watch.exited, s.watch.expected, s.watch.exitErr
	s.watch.mu.Unlock()
	if !exited || expected {
		return
	}
	err := VMExitError(exitErr, s.SerialLog)
	if prev, ok := state.Get("error").(error); ok && !errors.Is(prev, context.Canceled) {
		err = fmt.Errorf("%w (meanwhile: %v)", err, prev)
	}
	state.Put("error", err)
	state.Get("ui").(packersdk.Ui).Error(err.Error())
}

// VMExitError describes a VM that exited while the build still needed it:
// QEMU's exit status and stderr (exitErr from Driver.WaitVM, nil for
// status 0) and the last lines of the serial console at serialLog.
func VMExitError(exitErr error, serialLog string) error {
	how := "the VM powered off (QEMU exited with status 0)"
	if exitErr != nil {
		how = "QEMU exited: " + strings.TrimPrefix(exitErr.Error(), "QEMU: ")
	}
	tail := SerialTail(serialLog, serialTailLines)
	console := "the serial console " + serialLog + " stayed empty"
	if len(tail) > 0 {
		console = fmt.Sprintf("last serial console lines (%s):\n  %s", serialLog, strings.Join(tail, "\n  "))
	}
	return fmt.Errorf("the VM stopped while the build still needed it: %s\n%s", how, console)
}

// SerialTail returns the last n non-empty lines of the serial console
// file, without terminal escapes.
func SerialTail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var tail []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(ansiEscape.ReplaceAllString(sc.Text(), ""))
		if line == "" {
			continue
		}
		tail = append(tail, line)
		if len(tail) > n {
			tail = tail[1:]
		}
	}
	return tail
}
