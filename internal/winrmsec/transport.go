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

// PinnedTransport returns a WinRM transport decorator (the SDK's
// communicator.WinRM.WinRMTransportDecorator, masterzen's
// Parameters.TransportDecorator) that speaks HTTPS to a listener holding
// the certificate certPEM and to nothing else: the certificate is the only
// trusted root, it cannot sign others (it is not a CA), and the name
// verified is its own DNS name, so neither another certificate for the
// same name nor winrm_insecure gets through. Packer's communicator, its
// uploads (winrmcp) and downloads all build their clients through it.
//
// ntlm authenticates with NTLM (winrm_use_ntlm) instead of Basic. noProxy
// connects directly (winrm_no_proxy); otherwise the proxy is read from the
// environment at each connection, as Packer's own transports do (a proxy
// then relays the TLS connection without seeing into it).
func PinnedTransport(certPEM string, ntlm, noProxy bool) func() winrm.Transporter {
	proxy := communicator.RefreshProxyFromEnvironment
	if noProxy {
		proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	}
	return func() winrm.Transporter {
		var inner winrm.Transporter = winrm.NewClientWithProxyFunc(proxy)
		if ntlm {
			inner = winrm.NewClientNTLMWithProxyFunc(proxy)
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

// SealedNTLMTransport returns a transport decorator that logs on with NTLM
// and encrypts every message with the NTLM session key ([MS-WSMV] 2.2.9.1,
// masterzen's Encryption): what a WinRM HTTP listener with Windows'
// defaults (Basic off, AllowUnencrypted off) accepts. masterzen sends a
// message unencrypted when the NTLM handshake itself fails, so it is used
// only through QEMU's port forward on the host's loopback.
func SealedNTLMTransport() func() winrm.Transporter {
	return func() winrm.Transporter {
		enc, err := winrm.NewEncryption("ntlm")
		if err != nil {
			// NewEncryption fails only for protocols other than "ntlm".
			panic(err)
		}
		return enc
	}
}
