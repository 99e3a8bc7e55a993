package qemuvm

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

func winrmStepState() (multistep.StateBag, *testio.LockedBuffer) {
	out := &testio.LockedBuffer{}
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: out, ErrorWriter: out})
	return state, out
}

// stepWaitWinRM keeps trying while the guest's port is not there yet
// (the port function fails, as before QEMU forwards it), then logs on, runs
// the echo command and hands on a working communicator.
func TestStepWaitWinRMWaitsForTheGuest(t *testing.T) {
	g := testguest.StartForTest(t, testguest.Options{User: "Administrator", Password: "Build-Pw-42", QuietModuleLoad: true})
	host, port := g.HostPort()
	var tries atomic.Int32
	cfg := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMUser: "Administrator", WinRMPassword: "Build-Pw-42", WinRMTimeout: time.Minute}}
	step := &stepWaitWinRM{
		Config: cfg,
		Host:   func(multistep.StateBag) (string, error) { return host, nil },
		WinRMPort: func(multistep.StateBag) (int, error) {
			if tries.Add(1) < 3 {
				return 0, errors.New("no host port was forwarded to WinRM")
			}
			return port, nil
		},
		Poll: 10 * time.Millisecond,
	}
	state, out := winrmStepState()
	if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("halted: %v\n%s", state.Get("error"), out)
	}
	if tries.Load() != 3 {
		t.Errorf("asked for the port %d times, want 3", tries.Load())
	}
	comm, ok := state.Get("communicator").(packersdk.Communicator)
	if !ok {
		t.Fatal("no communicator in the state")
	}
	var stdout testio.LockedBuffer
	cmd := &packersdk.RemoteCmd{Command: "hostname", Stdout: &stdout}
	if err := cmd.RunWithUi(context.Background(), comm, state.Get("ui").(packersdk.Ui)); err != nil || cmd.ExitStatus() != 0 {
		t.Errorf("hostname through the communicator: %v, exit %d", err, cmd.ExitStatus())
	}
	if got := state.Get("communicator_config").(*communicator.Config); got.WinRMPort != port || got.WinRMHost != host {
		t.Errorf("communicator_config has %s:%d, want %s:%d", got.WinRMHost, got.WinRMPort, host, port)
	}
	if !strings.Contains(out.String(), "Connected to WinRM!") {
		t.Errorf("ui:\n%s", out)
	}
}

// A logon that never works ends at winrm_timeout with the last error; a
// cancelled build ends the wait.
func TestStepWaitWinRMGivesUp(t *testing.T) {
	g := testguest.StartForTest(t, testguest.Options{User: "Administrator", Password: "Build-Pw-42", QuietModuleLoad: true})
	host, port := g.HostPort()
	newStep := func(timeout time.Duration) *stepWaitWinRM {
		return &stepWaitWinRM{
			Config:    &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMUser: "Administrator", WinRMPassword: "wrong", WinRMTimeout: timeout}},
			Host:      func(multistep.StateBag) (string, error) { return host, nil },
			WinRMPort: func(multistep.StateBag) (int, error) { return port, nil },
			Poll:      20 * time.Millisecond,
		}
	}
	state, out := winrmStepState()
	if action := newStep(time.Second).Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("a wrong password connected")
	}
	err, _ := state.Get("error").(error)
	if err == nil || !strings.Contains(err.Error(), "winrm_timeout 1s") || !strings.Contains(err.Error(), "401") {
		t.Errorf("error %v, want the timeout and the last try's 401\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	state, _ = winrmStepState()
	if action := newStep(time.Hour).Run(ctx, state); action != multistep.ActionHalt {
		t.Fatal("a cancelled wait went on")
	}
	if err, _ := state.Get("error").(error); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("error %v, want the cancel", err)
	}
}

// A port that accepts connections but never answers (QEMU's user network
// forwarding to a guest not listening yet) does not hold the wait: each
// look gives up on its connection, and the wait ends at winrm_timeout
// naming the silent listener.
func TestStepWaitWinRMSilentPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	step := &stepWaitWinRM{
		Config:    &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMUser: "Administrator", WinRMPassword: "x", WinRMTimeout: 5 * time.Second}},
		Host:      func(multistep.StateBag) (string, error) { return "127.0.0.1", nil },
		WinRMPort: func(multistep.StateBag) (int, error) { return port, nil },
		Poll:      10 * time.Millisecond,
	}
	state, out := winrmStepState()
	if action := step.Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("connected to a port that never answers")
	}
	err, _ = state.Get("error").(error)
	if err == nil || !strings.Contains(err.Error(), "no answer from 127.0.0.1:") {
		t.Errorf("error %v, want the silent listener named\n%s", err, out)
	}
	mu.Lock()
	n := len(held)
	mu.Unlock()
	if n < 2 {
		t.Errorf("%d connection(s) tried within winrm_timeout, want a new one per look", n)
	}
}
