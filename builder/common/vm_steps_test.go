package common

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// mockState is the state bag of a step test, with a DriverMock.
func mockState(t *testing.T) (*multistep.BasicStateBag, *qemuvm.DriverMock) {
	return qemuvm.MockState(packersdk.TestUi(t))
}

func TestStepCreateDisk(t *testing.T) {
	state, d := mockState(t)
	out := t.TempDir()
	step := &StepCreateDisk{OutputDir: out, Name: "win.qcow2", SizeMB: 40960}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if d.CreateDiskPath != filepath.Join(out, "win.qcow2") || d.CreateDiskSizeMB != 40960 || state.Get(qemuvm.StateDiskPath) != d.CreateDiskPath {
		t.Fatalf("disk %s %d", d.CreateDiskPath, d.CreateDiskSizeMB)
	}
	// A failed build removes the disk; a successful one keeps it.
	testio.WriteFile(t, d.CreateDiskPath, "disk")
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
	testio.WriteFile(t, src, "vars")
	step := &StepCopyEFIVars{Firmware: qemuvm.FirmwareUEFI, OVMF: qemuvm.OVMF{Code: "/c", Vars: src}, OutputDir: out}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	ovmf := state.Get(qemuvm.StateOVMF).(qemuvm.OVMF)
	if ovmf.Vars != filepath.Join(out, qemuvm.EFIVarsName) || ovmf.Code != "/c" {
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
	bios := &StepCopyEFIVars{Firmware: qemuvm.FirmwareBIOS, OutputDir: out}
	state2, _ := mockState(t)
	if bios.Run(context.Background(), state2) != multistep.ActionContinue || state2.Get(qemuvm.StateOVMF) != nil {
		t.Fatal("BIOS copied a variable store")
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
