package common

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	sdknet "github.com/hashicorp/packer-plugin-sdk/net"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// StepForwardPort reserves a free host port on 127.0.0.1 in
// [Min, Max) for QEMU's forward to the guest's WinRM port. The port stays
// reserved (by Packer's lock file) until Cleanup, so parallel builds do not
// pick it too.
//
// Uses state: "ui".
// Produces state: StateHostPort.
type StepForwardPort struct {
	Min, Max int
	// StateKey is where the port goes (default StateHostPort) and Purpose
	// what it is for, in the message (default "WinRM").
	StateKey, Purpose string

	listener *sdknet.Listener
}

func (s *StepForwardPort) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	l, err := sdknet.ListenRangeConfig{Addr: "127.0.0.1", Min: s.Min, Max: s.Max, Network: "tcp"}.Listen(ctx)
	if err != nil {
		return halt(state, ui, fmt.Errorf("host_port_min: no free port on 127.0.0.1 in %d-%d: %w", s.Min, s.Max-1, err))
	}
	// Free the socket for QEMU; the lock file keeps the port ours.
	_ = l.Listener.Close()
	s.listener = l
	key, purpose := s.StateKey, s.Purpose
	if key == "" {
		key = StateHostPort
	}
	if purpose == "" {
		purpose = "WinRM"
	}
	ui.Say(fmt.Sprintf("%s will be reached on 127.0.0.1:%d", purpose, l.Port))
	state.Put(key, l.Port)
	return multistep.ActionContinue
}

// Cleanup releases the port's lock file.
func (s *StepForwardPort) Cleanup(multistep.StateBag) {
	if s.listener != nil {
		_ = s.listener.Close()
		s.listener = nil
	}
}
