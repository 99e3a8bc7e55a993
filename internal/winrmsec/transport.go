package winrmsec

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// Pinned returns a maker of WinRM transporters (for
// qemuvm.StepConnectWinRM, which gives them guestcmd's dial) that
// speak HTTPS to a listener holding the certificate certPEM and to nothing
// else: the certificate is the only trusted root, it cannot sign others (it
// is not a CA), and the name verified is its own DNS name, so neither
// another certificate for the same name nor winrm_insecure gets through.
// Packer's communicator, its uploads (winrmcp) and downloads all build
// their clients through it.
//
// ntlm authenticates with NTLM (winrm_use_ntlm) instead of Basic. With a
// dial the proxy comes from the environment, as masterzen's transport
// reads it (never for a loopback address); a nil dial means
// winrm_no_proxy: masterzen's own dialer and no proxy. A proxy relays the
// TLS connection without seeing into it.
func Pinned(certPEM string, ntlm bool) func(dial Dial) winrm.Transporter {
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	return func(dial Dial) winrm.Transporter {
		var inner winrm.Transporter
		switch {
		case dial != nil && ntlm:
			inner = winrm.NewClientNTLMWithDial(dial)
		case dial != nil:
			inner = winrm.NewClientWithDial(dial)
		case ntlm:
			inner = winrm.NewClientNTLMWithProxyFunc(noProxy)
		default:
			inner = winrm.NewClientWithProxyFunc(noProxy)
		}
		return &pinnedTransport{inner: inner, certPEM: []byte(certPEM)}
	}
}

// PinnedTransport is Pinned as a transport decorator (masterzen's
// Parameters.TransportDecorator) without guestcmd: noProxy as
// winrm_no_proxy, else the proxy from the environment at each connection.
func PinnedTransport(certPEM string, ntlm, noProxy bool) func() winrm.Transporter {
	if noProxy {
		mk := Pinned(certPEM, ntlm)
		return func() winrm.Transporter { return mk(nil) }
	}
	return func() winrm.Transporter {
		var inner winrm.Transporter = winrm.NewClientWithProxyFunc(communicator.RefreshProxyFromEnvironment)
		if ntlm {
			inner = winrm.NewClientNTLMWithProxyFunc(communicator.RefreshProxyFromEnvironment)
		}
		return &pinnedTransport{inner: inner, certPEM: []byte(certPEM)}
	}
}

type pinnedTransport struct {
	inner   winrm.Transporter
	certPEM []byte
}

// errNotHTTPS is returned for an endpoint that is not HTTPS: the pinned
// transport never speaks plain HTTP.
var errNotHTTPS = errors.New("the pinned WinRM transport speaks HTTPS only (winrm_use_ssl is false)")

func (t *pinnedTransport) Transport(e *winrm.Endpoint) error {
	if !e.HTTPS {
		return errNotHTTPS
	}
	if _, err := ParseCertificatePEM(string(t.certPEM)); err != nil {
		return fmt.Errorf("the pinned WinRM certificate: %w", err)
	}
	pinned := *e
	pinned.Insecure = false
	pinned.CACert = t.certPEM
	pinned.TLSServerName = CertificateDNSName
	return t.inner.Transport(&pinned)
}

func (t *pinnedTransport) Post(c *winrm.Client, m *soap.SoapMessage) (string, error) {
	return t.inner.Post(c, m)
}

// SealedNTLMTransport is SealedNTLM as a transport decorator (masterzen's
// Parameters.TransportDecorator) without guestcmd.
func SealedNTLMTransport(user, password string) func() winrm.Transporter {
	mk := SealedNTLM(user, password)
	return func() winrm.Transporter { return mk(nil) }
}
