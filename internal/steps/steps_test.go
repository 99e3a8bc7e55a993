package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Halt puts the error in state, shows it, and stops the run.
func TestHalt(t *testing.T) {
	state := new(multistep.BasicStateBag)
	ui := &packersdk.MockUi{}
	want := errors.New("disk_size: 0 is too small")
	if got := Halt(state, ui, want); got != multistep.ActionHalt {
		t.Errorf("Halt = %v, want ActionHalt", got)
	}
	if got, _ := state.Get("error").(error); got != want {
		t.Errorf("state error = %v, want %v", got, want)
	}
	if ui.ErrorMessage != want.Error() {
		t.Errorf("ui error %q, want %q", ui.ErrorMessage, want.Error())
	}
}

func TestBuildFailed(t *testing.T) {
	for _, key := range []string{"", multistep.StateCancelled, multistep.StateHalted} {
		state := new(multistep.BasicStateBag)
		if key != "" {
			state.Put(key, true)
		}
		if got, want := BuildFailed(state), key != ""; got != want {
			t.Errorf("BuildFailed with %q set = %v, want %v", key, got, want)
		}
	}
}

func TestFileExists(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "disk.qcow2")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{file: true, dir: true, filepath.Join(dir, "missing"): false} {
		if got := FileExists(path); got != want {
			t.Errorf("FileExists(%s) = %v, want %v", path, got, want)
		}
	}
}

// recordStep records its Run and Cleanup in a shared log and returns
// its action, halting through Halt when it has an error.
type recordStep struct {
	name   string
	log    *[]string
	err    error
	action multistep.StepAction
	cancel context.CancelFunc
}

func (s *recordStep) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	*s.log = append(*s.log, "run "+s.name)
	if s.cancel != nil {
		s.cancel()
	}
	if s.err != nil {
		return Halt(state, state.Get("ui").(packersdk.Ui), s.err)
	}
	return s.action
}

func (s *recordStep) Cleanup(multistep.StateBag) { *s.log = append(*s.log, "cleanup "+s.name) }

func TestRun(t *testing.T) {
	stepErr := errors.New("qemu-img convert failed")
	tests := []struct {
		name    string
		second  func(cancel context.CancelFunc) *recordStep
		wantErr string
		wantLog []string
	}{
		{
			name:    "every step continues",
			second:  func(context.CancelFunc) *recordStep { return &recordStep{action: multistep.ActionContinue} },
			wantLog: []string{"run a", "run b", "run c", "cleanup c", "cleanup b", "cleanup a"},
		},
		{
			name:    "a step halts with an error",
			second:  func(context.CancelFunc) *recordStep { return &recordStep{err: stepErr} },
			wantErr: stepErr.Error(),
			wantLog: []string{"run a", "run b", "cleanup b", "cleanup a"},
		},
		{
			name:    "a step halts without an error",
			second:  func(context.CancelFunc) *recordStep { return &recordStep{action: multistep.ActionHalt} },
			wantErr: "sysprep was halted",
			wantLog: []string{"run a", "run b", "cleanup b", "cleanup a"},
		},
		{
			name: "the context is cancelled",
			second: func(cancel context.CancelFunc) *recordStep {
				return &recordStep{action: multistep.ActionContinue, cancel: cancel}
			},
			wantErr: "sysprep was cancelled",
			wantLog: []string{"run a", "run b", "cleanup b", "cleanup a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var log []string
			b := tt.second(cancel)
			b.name, b.log = "b", &log
			seq := []multistep.Step{
				&recordStep{name: "a", log: &log, action: multistep.ActionContinue},
				b,
				&recordStep{name: "c", log: &log, action: multistep.ActionContinue},
			}
			state := new(multistep.BasicStateBag)
			ui := &packersdk.MockUi{}
			state.Put("ui", packersdk.Ui(ui))
			err := Run(ctx, state, seq, "sysprep")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Run = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("Run = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == stepErr.Error() && !errors.Is(err, stepErr) {
				t.Errorf("Run = %v, not the step's error", err)
			}
			if !slices.Equal(log, tt.wantLog) {
				t.Errorf("steps ran %q, want %q", log, tt.wantLog)
			}
		})
	}
}

// The step's error wins over cancellation: it says why the run stopped.
func TestFailurePrefersTheStepError(t *testing.T) {
	state := new(multistep.BasicStateBag)
	want := errors.New("WinRM wait cancelled")
	state.Put("error", want)
	state.Put(multistep.StateCancelled, true)
	state.Put(multistep.StateHalted, true)
	if got := Failure(state, "build"); got != want {
		t.Errorf("Failure = %v, want %v", got, want)
	}
	state = new(multistep.BasicStateBag)
	state.Put(multistep.StateCancelled, true)
	state.Put(multistep.StateHalted, true)
	if got := Failure(state, "build"); got == nil || got.Error() != "build was cancelled" {
		t.Errorf("Failure = %v, want build was cancelled", got)
	}
}

// Sleep returns at once, reporting false, when its context has ended, and
// true after a wait with a live context.
func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !Sleep(ctx, 0) || !Sleep(ctx, time.Millisecond) {
		t.Fatal("Sleep reported an ended context for a live one")
	}
	cancel()
	if Sleep(ctx, time.Hour) || Sleep(ctx, 0) {
		t.Fatal("Sleep reported a live context for an ended one")
	}
}
