package qemuvm

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// StepForwardPort reserves a free host port on 127.0.0.1 in [Min, Max)
// for QEMU's forward to the guest's WinRM port (ReservePort): every port of
// the range is tried once, and a range with none free fails the build,
// naming it. The port stays reserved (by Packer's lock file) until
// Cleanup, which removes the lock file.
//
// Uses state: "ui".
// Produces state: StateHostPort.
type StepForwardPort struct {
	Min, Max int
	// StateKey is where the port goes (default StateHostPort) and Purpose
	// what it is for, in the message (default "WinRM").
	StateKey, Purpose string

	reservation *PortReservation
}

func (s *StepForwardPort) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	r, err := ReservePort("127.0.0.1", s.Min, s.Max)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("host_port_min/host_port_max: %w; widen the range or free a port", err))
	}
	s.reservation = r
	key, purpose := s.StateKey, s.Purpose
	if key == "" {
		key = StateHostPort
	}
	if purpose == "" {
		purpose = "WinRM"
	}
	ui.Say(fmt.Sprintf("%s will be reached on 127.0.0.1:%d", purpose, r.Port))
	state.Put(key, r.Port)
	return multistep.ActionContinue
}

// Cleanup releases the port and removes its lock file.
func (s *StepForwardPort) Cleanup(multistep.StateBag) {
	s.reservation.Release()
	s.reservation = nil
}
