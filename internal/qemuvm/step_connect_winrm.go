package qemuvm

import (
	"context"
	"log"
	"net"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
)

// WinRMTransporter makes a WinRM transporter over the given dial
// function (nil: a direct connection, for winrm_no_proxy).
type WinRMTransporter = func(dial func(network, addr string) (net.Conn, error)) winrm.Transporter

// StateWinRMTransporter is the WinRMTransporter the builders'
// StepPrepareWinRM chose for the build (the pinned HTTPS transport);
// StepConnectWinRM uses it.
const StateWinRMTransporter = "winbake_winrm_transporter"

// cleanupSettleTime is how long Cleanup waits for aborted commands to
// delete their shells before the VM is stopped.
const cleanupSettleTime = time.Minute

// StepConnectWinRM waits for WinRM with Packer's StepConnect (trying every
// second, see stepWaitWinRM), its WinRM client going through a guestcmd.Transport: every request has
// guestcmd.DefaultResponseTimeout for its answer, and the communicator put into
// the state is a guestcmd.Guard. When the build's context ends (Ctrl-C,
// the VM exiting), the commands in flight, a provisioner's included, are
// aborted at once, and Cleanup waits for their shells to be deleted
// before later Cleanups stop the VM.
//
// With winrm_no_proxy Packer installs its own transport: commands are then
// still bounded by winbake's deadlines, but cannot be aborted.
//
// Uses state: "ui", StateWinRMTransporter (optional).
// Produces state: "communicator" (a *guestcmd.Guard for WinRM).
type StepConnectWinRM struct {
	Config    *communicator.Config
	Host      func(multistep.StateBag) (string, error)
	WinRMPort func(multistep.StateBag) (int, error)
	// Transporter, when set, makes the WinRM client's transporter over
	// guestcmd's connections instead of masterzen's Basic or NTLM client:
	// winrmsec.Pinned (HTTPS trusting the build's certificate only) or
	// winrmsec.SealedNTLM (NTLM with encrypted messages). Without it the
	// one StepPrepareWinRM put into the state (StateWinRMTransporter), if
	// any, is used. With winrm_no_proxy it gets a nil dial (no proxy, no
	// guestcmd), and Packer's proxy transport is not installed over it.
	Transporter WinRMTransporter
	// Poll is the pause between tries while the guest boots (WinRMPoll
	// by default).
	Poll time.Duration

	inner *communicator.StepConnect
	guard *guestcmd.Guard
	stop  chan struct{}
}

func (s *StepConnectWinRM) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	mk := s.Transporter
	if mk == nil {
		mk, _ = state.Get(StateWinRMTransporter).(WinRMTransporter)
	}
	config := s.Config
	var transport *guestcmd.Transport
	switch {
	case s.Config.Type == "winrm" && !s.Config.WinRMNoProxy:
		transport = guestcmd.NewTransport()
		if mk != nil {
			s.Config.WinRMTransportDecorator = transport.DecoratorWith(mk)
		} else {
			s.Config.WinRMTransportDecorator = transport.Decorator(s.Config.WinRMUseNTLM.True())
		}
	case s.Config.Type == "winrm" && mk != nil:
		// Packer's StepConnect would put its proxy transport in place of
		// this one: it gets a copy without winrm_no_proxy.
		log.Printf("winrm_no_proxy: WinRM requests go directly, not through guestcmd, and cannot be aborted")
		c := *s.Config
		c.WinRMNoProxy = false
		c.WinRMTransportDecorator = func() winrm.Transporter { return mk(nil) }
		config = &c
	case s.Config.WinRMNoProxy:
		log.Printf("winrm_no_proxy: WinRM requests go through Packer's own transport and cannot be aborted")
	}
	s.inner = &communicator.StepConnect{Config: config, Host: s.Host, WinRMPort: s.WinRMPort,
		CustomConnect: map[string]multistep.Step{"winrm": &stepWaitWinRM{Config: config, Host: s.Host, WinRMPort: s.WinRMPort, Poll: s.Poll}}}
	action := s.inner.Run(ctx, state)
	comm, ok := state.Get("communicator").(packersdk.Communicator)
	if !ok || comm == nil || transport == nil {
		return action
	}
	s.guard = guestcmd.NewGuard(comm, transport)
	state.Put("communicator", s.guard)
	s.stop = make(chan struct{})
	go func(guard *guestcmd.Guard, stop <-chan struct{}) {
		select {
		case <-ctx.Done():
			guard.Abort()
		case <-stop:
		}
	}(s.guard, s.stop)
	return action
}

// Cleanup aborts the commands still running and waits for them to end.
func (s *StepConnectWinRM) Cleanup(state multistep.StateBag) {
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
	if s.guard != nil {
		s.guard.Abort()
		if !s.guard.Settle(cleanupSettleTime) {
			log.Printf("WinRM: %d command(s) still running %s after they were aborted", s.guard.InFlight(), cleanupSettleTime)
		}
		s.guard = nil
	}
	if s.inner != nil {
		s.inner.Cleanup(state)
	}
}
