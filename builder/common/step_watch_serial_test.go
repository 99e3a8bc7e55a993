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

func failedSerialState(t *testing.T, console []string) (*multistep.BasicStateBag, *StepWatchSerial) {
	testio.CaptureLog(t)
	state, _ := mockState(t)
	path := filepath.Join(t.TempDir(), "serial.log")
	testio.WriteFile(t, path, strings.Join(console, "\r\n")+"\r\n")
	step := &StepWatchSerial{Path: path}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	state.Put("error", errors.New("Timeout waiting for WinRM."))
	state.Put(multistep.StateHalted, true)
	return state, step
}

// WinRM never came up: the error names the phase and says setuperr.log
// could not be read, nor its X:\ copy.
func TestStepWatchSerialNamesPhaseWithoutWinRM(t *testing.T) {
	state, step := failedSerialState(t, []string{
		"winbake-standin: setup: windowsPE: image 1",
		"winbake-standin: setup: windowsPE: Windows Setup error: Windows cannot install required files.",
	})
	step.Cleanup(state)
	msg := state.Get("error").(error).Error()
	for _, w := range []string{"Timeout waiting for WinRM.", "phase on the serial console: windowsPE", "Windows cannot install required files.",
		`C:\Windows\Panther\setuperr.log could not be read`, `X:\Windows\Panther\setuperr.log, is never reachable`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

// WinRM is up: the tail of setuperr.log is read over the communicator.
func TestStepWatchSerialFetchesSetupErrLog(t *testing.T) {
	state, step := failedSerialState(t, []string{"winbake-standin: setup: oobeSystem: complete", "winbake-standin: setup: complete"})
	var log strings.Builder
	for i := 1; i <= 25; i++ {
		log.WriteString("2026-11-22 04:00:00, Error [setup.exe] line " + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + "\r\n")
	}
	comm := &packersdk.MockCommunicator{StartStdout: log.String()}
	state.Put("communicator", packersdk.Communicator(comm))
	step.Cleanup(state)
	if comm.StartCmd == nil || comm.StartCmd.Command != `type C:\Windows\Panther\setuperr.log` {
		t.Fatalf("command %+v", comm.StartCmd)
	}
	msg := state.Get("error").(error).Error()
	if !strings.Contains(msg, `last 20 line(s) of C:\Windows\Panther\setuperr.log:`) || !strings.Contains(msg, "phase on the serial console: complete") ||
		strings.Count(msg, "[setup.exe]") != 20 {
		t.Errorf("error:\n%s", msg)
	}
}

// A cancelled build (Ctrl-C) is not diagnosed: no WinRM round trip.
func TestStepWatchSerialCancelled(t *testing.T) {
	state, step := failedSerialState(t, []string{"winbake-standin: setup: windowsPE: x"})
	state.Put(multistep.StateCancelled, true)
	comm := &packersdk.MockCommunicator{}
	state.Put("communicator", packersdk.Communicator(comm))
	step.Cleanup(state)
	if comm.StartCalled || state.Get("error").(error).Error() != "Timeout waiting for WinRM." {
		t.Errorf("cancelled build diagnosed: %v", state.Get("error"))
	}
}

// Secure Boot refusing the boot loader stops the build at once (the
// firmware then waits in its boot manager, so nothing else would end the
// wait but winrm_timeout) with an error that names the refusal and the fix,
// even though the stop reaches the waiting step as a cancellation.
func TestStepWatchSerialStopsBuildOnBootRefusal(t *testing.T) {
	testio.CaptureLog(t)
	state, _ := mockState(t)
	path := filepath.Join(t.TempDir(), "serial.log")
	testio.WriteFile(t, path, "BdsDxe: loading Boot0001 \"UEFI QEMU DVD-ROM QM00005 \" from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x2,0xFFFF,0x0)\r\n")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	state.Put(qemuvm.StateStopBuild, context.CancelFunc(stop))
	step := &StepWatchSerial{Path: path}
	if step.Run(ctx, state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	select {
	case <-ctx.Done():
		t.Fatal("the build was stopped before any refusal")
	case <-time.After(time.Second):
	}
	refusal := `BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00005 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x2,0xFFFF,0x0): Access Denied`
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(refusal + "\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a Secure Boot refusal on the console did not stop the build")
	}
	state.Put("error", context.Canceled)
	state.Put(multistep.StateCancelled, true)
	step.Cleanup(state)
	msg := state.Get("error").(error).Error()
	for _, w := range []string{"Secure Boot refused the boot loader", refusal, "efi_firmware_vars", "secure_boot = false"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

// Without a refusal the watch ends with the step and stops nothing.
func TestStepWatchSerialWithoutRefusalStopsNothing(t *testing.T) {
	testio.CaptureLog(t)
	state, _ := mockState(t)
	path := filepath.Join(t.TempDir(), "serial.log")
	testio.WriteFile(t, path, "BdsDxe: failed to load Boot0002 \"UEFI Misc Device\" from PciRoot(0x0)/Pci(0x3,0x0): Not Found\r\n")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	state.Put(qemuvm.StateStopBuild, context.CancelFunc(stop))
	step := &StepWatchSerial{Path: path}
	step.Run(ctx, state)
	time.Sleep(time.Second)
	step.Cleanup(state)
	if ctx.Err() != nil {
		t.Error("a boot failure that is no Secure Boot refusal stopped the build")
	}
	if _, failed := state.GetOk("error"); failed {
		t.Errorf("error %v on a build that did not fail", state.Get("error"))
	}
}
