package qemuvm

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// vmExit is a DriverMock WaitVM that returns err once exit is closed.
func vmExit(exit <-chan struct{}, err error) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-exit:
			return err
		case <-ctx.Done():
			select {
			case <-exit: // both ready: the exit came first
				return err
			default:
			}
			return ctx.Err()
		}
	}
}

// QEMU exiting by itself stops the build (the step's context is cancelled
// through StateStopBuild) and the build's error is QEMU's exit with the
// last console lines, not the cancellation a waiting step reported.
func TestStepWatchVMStopsTheBuildWhenQEMUExits(t *testing.T) {
	state, d := mockState(t)
	serial := filepath.Join(t.TempDir(), SerialLogName)
	testio.WriteFile(t, serial, "\x1b[2Jfirmware\r\n\r\nsetup: specialize\r\nlast words\r\n")
	exit := make(chan struct{})
	d.WaitVMFunc = vmExit(exit, errors.New("QEMU: exit status 1: qemu-system-x86_64: terminating on signal 15"))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	state.Put(StateStopBuild, context.CancelFunc(stop))
	step := &StepWatchVM{SerialLog: serial}
	if step.Run(ctx, state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	close(exit)
	<-ctx.Done()
	state.Put("error", context.Canceled) // what the waiting step reported
	step.Cleanup(state)
	err, _ := state.Get("error").(error)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"QEMU exited: exit status 1: qemu-system-x86_64: terminating on signal 15", "firmware\n  setup: specialize\n  last words"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %q carries the cancellation", err)
	}
}

// A shutdown the build asked for is no fault; with PowerOffEnds the guest
// powering itself off is none either, a crash still is.
func TestStepWatchVMExpectedExits(t *testing.T) {
	for _, tc := range []struct {
		name         string
		expect       bool
		powerOffEnds bool
		exitErr      error
		wantStop     bool
	}{
		{"shutdown asked for", true, false, nil, false},
		{"guest powered off, communicator none", false, true, nil, false},
		{"crash, communicator none", false, true, errors.New("QEMU: signal: segmentation fault"), true},
		{"guest powered off by itself", false, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, d := mockState(t)
			exit := make(chan struct{})
			d.WaitVMFunc = vmExit(exit, tc.exitErr)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			state.Put(StateStopBuild, context.CancelFunc(stop))
			step := &StepWatchVM{SerialLog: filepath.Join(t.TempDir(), "none.log"), PowerOffEnds: tc.powerOffEnds}
			step.Run(ctx, state)
			if tc.expect {
				ExpectVMExit(state)
			}
			close(exit)
			step.Cleanup(state) // waits for the watch to see the exit
			_, failed := state.GetOk("error")
			if stopped := ctx.Err() != nil; stopped != tc.wantStop || failed != tc.wantStop {
				t.Errorf("build stopped %v, error %v; want %v", stopped, state.Get("error"), tc.wantStop)
			}
		})
	}
}
