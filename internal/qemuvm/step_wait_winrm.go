package qemuvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"
	winrmcmd "github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmwait"
)

// WinRMPoll is how often StepConnectWinRM tries WinRM while the guest
// boots. Each try is one TCP connection and, once the guest answers, one
// echo command: cheap for the guest, and a ready guest waits at most this
// long.
const WinRMPoll = time.Second

// stepWaitWinRM is StepConnectWinRM's wait for WinRM, in place of the
// SDK's, which sleeps 5 s before its first try and 5 s between tries
// (packer-plugin-sdk communicator/step_connect_winrm.go, waitForWinRM): up
// to 10 s per boot spent with the guest already listening. It waits, up to
// winrm_timeout, until an echo command runs over WinRM, trying every Poll
// (WinRMPoll by default), and puts the communicator in the state as
// "communicator". The SDK's StepConnect around it keeps everything else
// (other communicator types, pause_before_connecting).
type stepWaitWinRM struct {
	Config    *communicator.Config
	Host      func(multistep.StateBag) (string, error)
	WinRMPort func(multistep.StateBag) (int, error)
	Poll      time.Duration
}

// winRMConnectedMarker is what the echo command prints.
const winRMConnectedMarker = "WinRM connected."

func (s *stepWaitWinRM) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	poll := s.Poll
	if poll <= 0 {
		poll = WinRMPoll
	}
	ui.Say("Waiting for WinRM to become available...")
	waitCtx, cancel := context.WithTimeout(ctx, s.Config.WinRMTimeout)
	defer cancel()
	var lastErr error
	for first := true; ; first = false {
		if !first {
			select {
			case <-waitCtx.Done():
			case <-time.After(poll):
			}
		}
		if ctx.Err() != nil {
			state.Put("error", errors.New("WinRM wait cancelled"))
			return multistep.ActionHalt
		}
		if waitCtx.Err() != nil {
			err := fmt.Errorf("timeout waiting for WinRM (winrm_timeout %s); last try: %v", s.Config.WinRMTimeout, lastErr)
			return steps.Halt(state, ui, err)
		}
		comm, err := s.try(waitCtx, state, ui)
		if err == nil {
			ui.Say("Connected to WinRM!")
			state.Put("communicator", comm)
			return multistep.ActionContinue
		}
		if deadline, _ := waitCtx.Deadline(); time.Now().Before(deadline) || lastErr == nil {
			// A try that winrm_timeout cut short says less than the last
			// whole one (a 401 for a wrong password, say).
			lastErr = err
		}
		log.Printf("[DEBUG] WinRM not ready yet: %v", err)
	}
}

// try makes a communicator and runs the echo command through it once.
func (s *stepWaitWinRM) try(ctx context.Context, state multistep.StateBag, ui packersdk.Ui) (packersdk.Communicator, error) {
	host, err := s.Host(state)
	if err != nil {
		return nil, fmt.Errorf("WinRM host: %w", err)
	}
	port := s.Config.WinRMPort
	if s.WinRMPort != nil {
		if port, err = s.WinRMPort(state); err != nil {
			return nil, fmt.Errorf("WinRM port: %w", err)
		}
	}
	s.Config.WinRMHost, s.Config.WinRMPort = host, port
	state.Put("communicator_config", s.Config)
	// Only a connection the guest reacts to gets the logon, whose timeout
	// is winrm_timeout.
	if err := winrmwait.Answered(ctx, host, port); err != nil {
		return nil, err
	}
	if s.Config.WinRMNoProxy {
		if err := noProxy(host, port); err != nil {
			return nil, err
		}
		if s.Config.WinRMUseNTLM.True() {
			s.Config.WinRMTransportDecorator = communicator.ProxyTransportDecoratorWithNTLM
		} else {
			s.Config.WinRMTransportDecorator = communicator.ProxyTransportDecorator
		}
	}
	comm, err := winrm.New(&winrm.Config{
		Host:               host,
		Port:               port,
		Username:           s.Config.WinRMUser,
		Password:           s.Config.WinRMPassword,
		Timeout:            s.Config.WinRMTimeout,
		Https:              s.Config.WinRMUseSSL,
		Insecure:           s.Config.WinRMInsecure,
		TransportDecorator: s.Config.WinRMTransportDecorator,
	})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := &packersdk.RemoteCmd{
		Command: winrmcmd.Powershell(`if (Test-Path variable:global:ProgressPreference){$ProgressPreference='SilentlyContinue'}; echo "` + winRMConnectedMarker + `"`),
		Stdout:  &out,
	}
	if err := cmd.RunWithUi(ctx, comm, ui); err != nil {
		return nil, err
	}
	if !strings.Contains(out.String(), winRMConnectedMarker) {
		return nil, fmt.Errorf("the echo command printed %q", out.String())
	}
	return comm, nil
}

// noProxy adds host:port to NO_PROXY, as the SDK's wait does for
// winrm_no_proxy.
func noProxy(host string, port int) error {
	p := net.JoinHostPort(host, fmt.Sprint(port))
	current := os.Getenv("NO_PROXY")
	switch {
	case current == "":
		return os.Setenv("NO_PROXY", p)
	case !strings.Contains(current, p):
		return os.Setenv("NO_PROXY", current+","+p)
	}
	return nil
}

func (s *stepWaitWinRM) Cleanup(multistep.StateBag) {}
