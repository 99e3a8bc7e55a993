package common

import (
	"context"
	"fmt"
	"net"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// StateBuildWinRM is the winrmsec.BuildWinRM of the build: how WinRM is
// reached, recorded in the manifest as `winrm`.
const StateBuildWinRM = "build_winrm"

// stateWinRMCertificate is the *winrmsec.BuildCertificate and
// stateWinRMPFXPassword the password of its PKCS#12 file on the answer
// medium.
const (
	stateWinRMCertificate = "winrm_certificate"
	stateWinRMPFXPassword = "winrm_pfx_password"
)

// PrepareWinRMTransport decides how the build reaches WinRM, after
// PrepareCredentials and before the communicator's own Prepare. loopback
// says whether the guest is reached through a port forward on this host's
// 127.0.0.1 (QEMU's user network); only then may WinRM speak HTTP, and
// only when winrm_use_ssl is not set. Otherwise winrm_use_ssl is turned on
// and the answer file enables HTTPS with a certificate made for the build
// (StepPrepareWinRM). With the generated answer file winrm_port must be
// the listener's port (5985 for HTTP, 5986 for HTTPS).
func (c *UnattendConfig) PrepareWinRMTransport(comm *communicator.Config, loopback bool) []error {
	c.winrmHTTPS = !loopback || comm.WinRMUseSSL
	comm.WinRMUseSSL = c.winrmHTTPS
	c.winrmNTLM = comm.WinRMUseNTLM.True()
	if c.UnattendTemplate != "" || comm.WinRMPort == 0 {
		return nil
	}
	want, how := winrmsec.HTTPPort, "HTTP (port 5985): the guest is reached through the port forward on 127.0.0.1"
	if c.winrmHTTPS {
		want, how = winrmsec.HTTPSPort, "HTTPS (port 5986)"
		if !loopback {
			how += ": the guest is reached over a network"
		}
	}
	if comm.WinRMPort != want {
		return []error{&unattend.FieldError{Field: "winrm_port", Msg: fmt.Sprintf("%d is not the port the generated answer file opens: it enables WinRM over %s; "+
			"leave winrm_port unset (or %d), or configure another listener with unattend_template", comm.WinRMPort, how, want)}}
	}
	return nil
}

// WinRMOverHTTPS reports whether the build reaches WinRM over HTTPS (after
// PrepareWinRMTransport).
func (c *UnattendConfig) WinRMOverHTTPS() bool { return c.winrmHTTPS }

// IsLoopbackHost reports whether host is this machine's loopback (an IP
// address or "localhost").
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StepPrepareWinRM sets up how the communicator reaches WinRM and records
// it for the manifest.
//
// A fresh install over HTTPS gets a key and certificate made for this
// build: the answer medium carries them (StepCreateUnattendMedia) and the
// communicator trusts that certificate and no other (winrmsec.Pinned,
// which StepConnectWinRM takes from the state), so winrm_insecure has no
// effect. A build
// from source_image reaches the listener its source recorded, pinned to
// the source's certificate when that is HTTPS. Over HTTP nothing changes.
//
// Uses state: "ui".
// Produces state: StateBuildWinRM, StateWinRMTransporter over HTTPS, and
// over HTTPS for a fresh install the
// certificate and its PKCS#12 password for StepCreateUnattendMedia.
type StepPrepareWinRM struct {
	Unattend *UnattendConfig
	Comm     *communicator.Config
	// Source is the source image's record (source_image); nil for a fresh
	// install.
	Source *winrmsec.BuildWinRM
}

func (s *StepPrepareWinRM) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	if s.Source != nil {
		rec := *s.Source
		if rec.HTTPS() {
			s.pin(state, rec.Certificate)
			ui.Say(fmt.Sprintf("WinRM over HTTPS on port %d, trusting only the source image's certificate %s", rec.Port, rec.Thumbprint))
		}
		state.Put(StateBuildWinRM, rec)
		return multistep.ActionContinue
	}
	if !s.Unattend.winrmHTTPS {
		state.Put(StateBuildWinRM, winrmsec.BuildWinRM{Transport: winrmsec.TransportHTTP, Port: winrmsec.HTTPPort,
			FirewallRule: winrmsec.FirewallRuleHTTP, Basic: true})
		return multistep.ActionContinue
	}
	cert, err := winrmsec.NewBuildCertificate()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	password, err := winrmsec.NewPFXPassword()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	packersdk.LogSecretFilter.Set(password)
	s.pin(state, cert.PEM())
	state.Put(stateWinRMCertificate, cert)
	state.Put(stateWinRMPFXPassword, password)
	state.Put(StateBuildWinRM, winrmsec.BuildWinRM{Transport: winrmsec.TransportHTTPS, Port: winrmsec.HTTPSPort,
		Certificate: cert.PEM(), Thumbprint: cert.Thumbprint(), FirewallRule: winrmsec.FirewallRuleHTTPS, Basic: !s.Unattend.winrmNTLM})
	ui.Say(fmt.Sprintf("WinRM over HTTPS on port %d with a certificate made for this build (%s); the communicator trusts only it", winrmsec.HTTPSPort, cert.Thumbprint()))
	return multistep.ActionContinue
}

// pin makes the communicator trust certPEM only: StepConnectWinRM builds
// its transport with winrmsec.Pinned (winrm_no_proxy included).
func (s *StepPrepareWinRM) pin(state multistep.StateBag, certPEM string) {
	s.Comm.WinRMUseSSL = true
	state.Put(qemuvm.StateWinRMTransporter, qemuvm.WinRMTransporter(winrmsec.Pinned(certPEM, s.Comm.WinRMUseNTLM.True())))
}

// Cleanup drops the pinned transport; the certificate lived in memory and
// on the answer medium only, which StepCreateUnattendMedia removes.
func (s *StepPrepareWinRM) Cleanup(state multistep.StateBag) {
	forget(state, qemuvm.StateWinRMTransporter)
	forget(state, stateWinRMCertificate)
	forget(state, stateWinRMPFXPassword)
}

// winrmMedium returns the answer-file settings for WinRM over HTTPS and
// the PKCS#12 file for the medium, encrypted for the Windows build about
// to be installed; zero values over HTTP.
func winrmMedium(state multistep.StateBag, windowsBuild int, ntlm bool) (unattend.WinRMSettings, []byte, error) {
	cert, ok := state.Get(stateWinRMCertificate).(*winrmsec.BuildCertificate)
	if !ok {
		return unattend.WinRMSettings{}, nil, nil
	}
	password, _ := state.Get(stateWinRMPFXPassword).(string)
	pfx, err := cert.PFX(password, windowsBuild)
	if err != nil {
		return unattend.WinRMSettings{}, nil, fmt.Errorf("encoding the WinRM certificate for the answer medium: %w", err)
	}
	return unattend.WinRMSettings{
		HTTPS: true, Thumbprint: cert.Thumbprint(), PFXFile: winrmsec.PFXFileName, PFXPassword: password,
		FirewallRule: winrmsec.FirewallRuleHTTPS, NoBasic: ntlm,
	}, pfx, nil
}
