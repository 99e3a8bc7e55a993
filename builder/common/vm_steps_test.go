package common

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func mockState(t *testing.T) (*multistep.BasicStateBag, *DriverMock) {
	state := new(multistep.BasicStateBag)
	state.Put("ui", packersdk.TestUi(t))
	d := new(DriverMock)
	state.Put(StateDriver, Driver(d))
	return state, d
}

func TestStepCreateDisk(t *testing.T) {
	state, d := mockState(t)
	out := t.TempDir()
	step := &StepCreateDisk{OutputDir: out, Name: "win.qcow2", SizeMB: 40960}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if d.CreateDiskPath != filepath.Join(out, "win.qcow2") || d.CreateDiskSizeMB != 40960 || state.Get(StateDiskPath) != d.CreateDiskPath {
		t.Fatalf("disk %s %d", d.CreateDiskPath, d.CreateDiskSizeMB)
	}
	// A failed build removes the disk; a successful one keeps it.
	write(t, d.CreateDiskPath, "disk")
	step.Cleanup(state)
	if _, err := os.Stat(d.CreateDiskPath); err != nil {
		t.Fatal("cleanup removed the artifact's disk")
	}
	state.Put(multistep.StateHalted, true)
	step.Cleanup(state)
	if _, err := os.Stat(d.CreateDiskPath); !os.IsNotExist(err) {
		t.Fatal("cleanup of a failed build left the disk")
	}
}

func TestStepCreateDiskFails(t *testing.T) {
	state, d := mockState(t)
	d.CreateDiskErr = errors.New("no space")
	if (&StepCreateDisk{OutputDir: t.TempDir(), Name: "x.qcow2", SizeMB: 1}).Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("step continued after qemu-img failed")
	}
	if !strings.Contains(state.Get("error").(error).Error(), "no space") {
		t.Fatal(state.Get("error"))
	}
}

func TestStepCopyEFIVars(t *testing.T) {
	state, _ := mockState(t)
	src, out := filepath.Join(t.TempDir(), "VARS.fd"), t.TempDir()
	write(t, src, "vars")
	step := &StepCopyEFIVars{Firmware: FirmwareUEFI, OVMF: OVMF{Code: "/c", Vars: src}, OutputDir: out}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	ovmf := state.Get(StateOVMF).(OVMF)
	if ovmf.Vars != filepath.Join(out, EFIVarsName) || ovmf.Code != "/c" {
		t.Fatalf("%+v", ovmf)
	}
	if b, _ := os.ReadFile(ovmf.Vars); string(b) != "vars" {
		t.Fatal("copy differs")
	}
	state.Put(multistep.StateCancelled, true)
	step.Cleanup(state)
	if _, err := os.Stat(ovmf.Vars); !os.IsNotExist(err) {
		t.Fatal("cancelled build left efivars.fd")
	}
	bios := &StepCopyEFIVars{Firmware: FirmwareBIOS, OutputDir: out}
	state2, _ := mockState(t)
	if bios.Run(context.Background(), state2) != multistep.ActionContinue || state2.Get(StateOVMF) != nil {
		t.Fatal("BIOS copied a variable store")
	}
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

func TestParseBootCommand(t *testing.T) {
	keys, err := ParseBootCommand([]string{"<spacebar><wait2>aB:<enter><wait500ms>"})
	if err != nil {
		t.Fatal(err)
	}
	want := []BootKey{{QCodes: []string{"spc"}}, {Wait: 2 * time.Second}, {QCodes: []string{"a"}},
		{QCodes: []string{"shift", "b"}}, {QCodes: []string{"shift", "semicolon"}}, {QCodes: []string{"ret"}}, {Wait: 500 * time.Millisecond}}
	if !slices.EqualFunc(keys, want, func(a, b BootKey) bool { return a.Wait == b.Wait && slices.Equal(a.QCodes, b.QCodes) }) {
		t.Fatalf("got %+v", keys)
	}
	for _, bad := range []string{"<enter", "<hyper>", "<waitX>", "é"} {
		if _, err := ParseBootCommand([]string{bad}); err == nil || !strings.HasPrefix(err.Error(), "boot_command:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestStepBootCommand(t *testing.T) {
	state, d := mockState(t)
	keys, _ := ParseBootCommand([]string{"<spacebar><wait10ms><enter>"})
	step := &StepBootCommand{BootWait: 10 * time.Millisecond, Keys: keys, KeyInterval: time.Millisecond}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if len(d.SentKeys) != 2 || d.SentKeys[0][0] != "spc" || d.SentKeys[1][0] != "ret" {
		t.Fatalf("sent %v", d.SentKeys)
	}
}

func TestStepShutdownWaitsForExit(t *testing.T) {
	state, d := mockState(t)
	if (&StepShutdown{Timeout: time.Second}).Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if d.StopVMCalls != 0 {
		t.Fatal("QEMU killed although it exited")
	}
}

func TestStepShutdownKillsAfterTimeout(t *testing.T) {
	state, d := mockState(t)
	d.WaitVMFunc = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	start := time.Now()
	if (&StepShutdown{Timeout: 50 * time.Millisecond}).Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("continued although the VM never powered off")
	}
	if d.StopVMCalls != 1 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("StopVM %d after %s", d.StopVMCalls, time.Since(start))
	}
	if msg := state.Get("error").(error).Error(); !strings.HasPrefix(msg, "shutdown_timeout:") || !strings.Contains(msg, "killed") {
		t.Fatal(msg)
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
