package sysprep

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// stateHTTPHostPort is the host port forwarded to the guest's WinRM HTTP
// port (5985) when the build's WinRM is another port; stateWinRMClosed
// (bool) says stepCloseWinRM returned WinRM to Windows' defaults.
const (
	stateHTTPHostPort = "winrm_http_host_port"
	stateWinRMClosed  = "sysprep_winrm_closed"
)

// closeCommandTimeout bounds the command that closes WinRM: it may lose
// its session halfway and never report back.
const closeCommandTimeout = 2 * time.Minute

// stepCloseWinRM returns WinRM to Windows' defaults before sysprep
// generalizes the image, so that no instance booted from it listens with
// the build's settings: it removes what the build added (its HTTPS
// listener and certificate with the key, its firewall rule) and turns
// Basic authentication and unencrypted messages off
// (guest/close-winrm.cmd). Those changes end the session they run over,
// so it then logs on again the way Windows' defaults allow, with NTLM and
// encrypted messages on the HTTP listener, checks from the wire that Basic
// and unencrypted messages are refused and the build's HTTPS listener is
// gone, and in the guest that no build firewall rule or certificate
// remains; the rest of the run uses that session.
//
// Uses state: "ui", "communicator", StateHostPort, stateHTTPHostPort.
// Produces state: "communicator" (the new session), stateWinRMClosed.
type stepCloseWinRM struct {
	// Build is the golden image's WinRM (its manifest's).
	Build winrmsec.BuildWinRM
	// User, Password and Timeout log on again (winrm_username,
	// winrm_password, winrm_timeout).
	User, Password string
	Timeout        time.Duration

	connect *qemuvm.StepConnectWinRM
	sub     *multistep.BasicStateBag
}

func (s *stepCloseWinRM) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	command, err := closeWinRMCommand(s.Build)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	ui.Say("Returning WinRM to Windows' defaults (" + s.what() + ")")
	cctx, cancel := context.WithTimeout(ctx, closeCommandTimeout)
	r, err := runGuestUntil(cctx, communicatorOf(state), command)
	cancel()
	switch {
	case ctx.Err() != nil:
		return steps.Halt(state, ui, ctx.Err())
	case err != nil:
		// Expected: the session ended with the settings it ran on.
		log.Printf("closing WinRM: the session ended: %v", err)
	default:
		log.Printf("closing WinRM: exit %d: %s %s", r.ExitStatus, r.Stdout, r.Stderr)
	}

	httpPort, ok := state.Get(stateHTTPHostPort).(int)
	if !ok {
		httpPort, _ = state.Get(qemuvm.StateHostPort).(int)
	}
	conn := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{
		WinRMUser: s.User, WinRMPassword: s.Password, WinRMTimeout: s.Timeout, WinRMPort: winrmsec.HTTPPort,
	}}
	// Guarded as the first session was: bounded answers, aborted when
	// QEMU exits or the run is cancelled.
	s.connect = &qemuvm.StepConnectWinRM{
		Config:      conn,
		Transporter: winrmsec.SealedNTLM(s.User, s.Password),
		Host:        func(multistep.StateBag) (string, error) { return "127.0.0.1", nil },
		WinRMPort:   func(multistep.StateBag) (int, error) { return httpPort, nil },
	}
	s.sub = new(multistep.BasicStateBag)
	s.sub.Put("ui", ui)
	if s.connect.Run(ctx, s.sub) != multistep.ActionContinue {
		why := fmt.Sprintf("no logon within winrm_timeout (%s)", s.Timeout)
		if err, ok := s.sub.GetOk("error"); ok {
			why = err.(error).Error()
		}
		return steps.Halt(state, ui, fmt.Errorf("after returning WinRM to Windows' defaults, WinRM accepts no logon with NTLM and encrypted messages on port %d: %s", winrmsec.HTTPPort, why))
	}
	comm := s.sub.Get("communicator").(packersdk.Communicator)
	if problems := s.check(ctx, comm, state, httpPort); len(problems) > 0 {
		return steps.Halt(state, ui, fmt.Errorf("WinRM is not back to Windows' defaults: %s", strings.Join(problems, "; ")))
	}
	state.Put("communicator", comm)
	state.Put(stateWinRMClosed, true)
	ui.Say("WinRM is back to Windows' defaults: Basic and unencrypted messages refused, the build's listener, firewall rule and certificate gone; sysprep continues over NTLM with encrypted messages")
	return multistep.ActionContinue
}

// what says what is removed.
func (s *stepCloseWinRM) what() string {
	parts := []string{"firewall rule " + s.Build.FirewallRule, "Basic and unencrypted messages off"}
	if s.Build.HTTPS() {
		parts = append([]string{"HTTPS listener", "certificate " + s.Build.Thumbprint}, parts...)
	}
	return strings.Join(parts, ", ")
}

// check looks at what the closing left: on the wire, Basic and unsealed
// NTLM refused over HTTP and, for a build over HTTPS, no TLS listener on
// its port; in the guest, no build firewall rule or certificate.
func (s *stepCloseWinRM) check(ctx context.Context, comm packersdk.Communicator, state multistep.StateBag, httpPort int) []string {
	var problems []string
	if l := winrmsec.ProbeHTTPLogon(ctx, "127.0.0.1", httpPort, s.User, s.Password, false); !l.Refused {
		problems = append(problems, "a Basic logon over HTTP was "+l.String())
	}
	if l := winrmsec.ProbeHTTPLogon(ctx, "127.0.0.1", httpPort, s.User, s.Password, true); !l.Refused {
		problems = append(problems, "an unencrypted NTLM logon over HTTP was "+l.String())
	}
	if s.Build.HTTPS() {
		if port, ok := state.Get(qemuvm.StateHostPort).(int); ok {
			if cert, err := winrmsec.ProbeTLS(ctx, "127.0.0.1", port); err == nil {
				problems = append(problems, fmt.Sprintf("a TLS listener still answers on %d (certificate %s)", s.Build.Port, winrmsec.Thumbprint(cert.Raw)))
			}
		}
	}
	found, _, err := winrmsec.Leftovers(ctx, comm, s.Build.Thumbprint)
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, f := range found {
		problems = append(problems, f+" remains")
	}
	return problems
}

// Cleanup has nothing to undo: the session ends with the VM.
func (s *stepCloseWinRM) Cleanup(multistep.StateBag) {
	if s.connect != nil && s.sub != nil {
		s.connect.Cleanup(s.sub)
	}
}

// closeWinRMCommand is guest/close-winrm.cmd for the build's WinRM: its
// commands joined into one cmd.exe line.
func closeWinRMCommand(b winrmsec.BuildWinRM) (string, error) {
	if b.HTTPS() && b.Thumbprint == "" {
		return "", errors.New("the golden image's manifest records WinRM over HTTPS without a certificate thumbprint")
	}
	text, err := renderGuestFile("close-winrm.cmd", &b)
	if err != nil {
		return "", err
	}
	var cmds []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(strings.ToUpper(line), "REM") {
			continue
		}
		cmds = append(cmds, line)
	}
	return strings.Join(cmds, " & "), nil
}
