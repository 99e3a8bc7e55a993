package qemuvm

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// mockState is the state bag of a step test, with a DriverMock.
func mockState(t *testing.T) (*multistep.BasicStateBag, *DriverMock) {
	return MockState(packersdk.TestUi(t))
}

func TestStepStartTPM(t *testing.T) {
	state, d := mockState(t)
	out := t.TempDir()
	step := &StepStartTPM{Enabled: true, OutputDir: out}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if d.TPMStateDir != filepath.Join(out, "tpm") || state.Get(StateTPMSocket) != filepath.Join(out, "tpm", "swtpm.sock") {
		t.Fatalf("tpm dir %s", d.TPMStateDir)
	}
	step.Cleanup(state)
	if d.StopTPMCalls != 1 {
		t.Fatalf("swtpm stopped %d times", d.StopTPMCalls)
	}
	off, d2 := mockState(t)
	if (&StepStartTPM{OutputDir: out}).Run(context.Background(), off) != multistep.ActionContinue || d2.TPMStateDir != "" {
		t.Fatal("swtpm started without tpm")
	}
}

func TestStepRunVM(t *testing.T) {
	state, d := mockState(t)
	out := t.TempDir()
	vm := &VMConfig{Firmware: FirmwareBIOS, Accelerator: AccelTCG}
	if errs := vm.Prepare(nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	state.Put("iso_path", "/iso/win.iso")
	state.Put("cd_path", "/tmp/answer.iso")
	state.Put(StateDiskPath, filepath.Join(out, "win.qcow2"))
	state.Put(StateHostPort, 3000)
	step := &StepRunVM{VM: vm, Name: "win", OutputDir: out, GuestPort: 5985, UserArgs: [][]string{{"-snapshot"}}}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	got := strings.Join(Flatten(d.StartVMArgs), " ")
	for _, w := range []string{"-accel tcg", "file=/iso/win.iso", "file=/tmp/answer.iso", "hostfwd=tcp:127.0.0.1:3000-:5985", "-serial file:" + filepath.Join(out, "serial.log")} {
		if !strings.Contains(got, w) {
			t.Errorf("args lack %q: %s", w, got)
		}
	}
	if d.StartVMArgs[len(d.StartVMArgs)-1].Flag != "-snapshot" || state.Get(StateAccelerator) != AccelTCG {
		t.Errorf("qemu_args not last or accelerator not recorded")
	}
	step.Cleanup(state)
	if d.StopVMCalls != 1 {
		t.Fatalf("StopVM called %d times", d.StopVMCalls)
	}
}

func TestStepRunVMStartFails(t *testing.T) {
	state, d := mockState(t)
	d.StartVMErr = errors.New("qemu: boom")
	vm := &VMConfig{Accelerator: AccelTCG}
	vm.Prepare(nil)
	step := &StepRunVM{VM: vm, OutputDir: t.TempDir()}
	if step.Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("continued")
	}
	step.Cleanup(state)
	if d.StopVMCalls != 0 {
		t.Fatal("cleanup stopped a VM that never started")
	}
}

func TestStepForwardPort(t *testing.T) {
	state, _ := mockState(t)
	step := &StepForwardPort{Min: 20000, Max: 20100}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	port := state.Get(StateHostPort).(int)
	if port < 20000 || port >= 20100 {
		t.Fatalf("port %d", port)
	}
	step.Cleanup(state)
}
