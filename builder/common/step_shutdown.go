package common

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// ShutdownCommand powers Windows off at once.
const ShutdownCommand = "shutdown /s /t 0"

// StepShutdown runs `shutdown /s /t 0` over the communicator (without one,
// it waits for the guest to power itself off) and waits up to Timeout for
// QEMU to exit. Only after the timeout is QEMU killed, and the build fails:
// a disk whose Windows did not shut down cleanly is no golden image.
//
// Uses state: "ui", StateDriver, "communicator" (optional).
type StepShutdown struct {
	Timeout time.Duration
}

func (s *StepShutdown) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	qemuvm.ExpectVMExit(state)
	waitCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	if comm, ok := state.Get("communicator").(packersdk.Communicator); ok && comm != nil {
		ui.Say("Shutting Windows down: " + ShutdownCommand)
		if err := RunShutdownCommand(waitCtx, comm, s.Timeout); err != nil {
			// The connection may drop while Windows goes down; QEMU exiting
			// below is what counts.
			log.Printf("%q: %v", ShutdownCommand, err)
		}
	} else {
		ui.Say("No communicator: waiting for the VM to power itself off")
	}
	err := driver.WaitVM(waitCtx)
	switch {
	case err == nil:
		ui.Say(fmt.Sprintf("The VM powered off after %s", time.Since(start).Round(time.Second)))
		return multistep.ActionContinue
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		ui.Error(fmt.Sprintf("The VM did not power off within shutdown_timeout (%s); killing QEMU", s.Timeout))
		_ = driver.StopVM()
		return steps.Halt(state, ui, fmt.Errorf("shutdown_timeout: Windows did not power off within %s after %q; QEMU was killed", s.Timeout, ShutdownCommand))
	case ctx.Err() != nil:
		return steps.Halt(state, ui, ctx.Err())
	default:
		return steps.Halt(state, ui, fmt.Errorf("waiting for the VM to power off: %w", err))
	}
}

// RunShutdownCommand runs ShutdownCommand, bounded by timeout: it returns
// at once, or the connection drops as Windows goes down.
func RunShutdownCommand(ctx context.Context, comm packersdk.Communicator, timeout time.Duration) error {
	_, err := guestcmd.Run(ctx, comm, guestcmd.Command{
		Line: ShutdownCommand, What: ShutdownCommand, Timeout: timeout, Limit: "shutdown_timeout",
	})
	return err
}

// Cleanup has nothing to undo; StepRunVM's Cleanup kills a VM that still
// runs.
func (s *StepShutdown) Cleanup(multistep.StateBag) {}
