package winrmsec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/masterzen/winrm"
)

// Logon is the result of one logon attempt on a WinRM listener.
type Logon struct {
	// Accepted: the listener created a shell for the credentials.
	Accepted bool
	// Refused: the listener answered 401, Windows' answer to a scheme it
	// does not accept, to a wrong password and, over HTTP with
	// AllowUnencrypted false, to Basic and unsealed messages.
	Refused bool
	// Err is what the client saw when the logon was not accepted.
	Err error
}

func (l Logon) String() string {
	switch {
	case l.Accepted:
		return "accepted"
	case l.Refused:
		return "refused with 401"
	default:
		return fmt.Sprintf("no answer (%v)", l.Err)
	}
}

// probeTimeout bounds one probe: a listener that accepts the connection
// and never answers.
const probeTimeout = 30 * time.Second

// ProbeHTTPLogon tries to open (and closes again) a shell over HTTP at
// host:port with user and password, with Basic authentication or, with
// ntlm, NTLM without message encryption: what a listener with Windows'
// defaults refuses. The password goes over the connection in the clear
// (Basic) or as an NTLM response: probe only through the host's loopback.
func ProbeHTTPLogon(ctx context.Context, host string, port int, user, password string, ntlm bool) Logon {
	params := *winrm.DefaultParameters
	if ntlm {
		params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	}
	ep := &winrm.Endpoint{Host: host, Port: port, Timeout: probeTimeout}
	return tryLogon(ctx, ep, user, password, &params)
}

func tryLogon(ctx context.Context, ep *winrm.Endpoint, user, password string, params *winrm.Parameters) Logon {
	client, err := winrm.NewClientWithParameters(ep, user, password, params)
	if err != nil {
		return Logon{Err: err}
	}
	type result struct {
		shell *winrm.Shell
		err   error
	}
	done := make(chan result, 1)
	go func() {
		sh, err := client.CreateShell()
		done <- result{sh, err}
	}()
	select {
	case <-ctx.Done():
		return Logon{Err: ctx.Err()}
	case r := <-done:
		if r.err == nil {
			_ = r.shell.Close()
			return Logon{Accepted: true}
		}
		// masterzen's answer to a 401 (it carries no SOAP body).
		return Logon{Refused: strings.Contains(r.err.Error(), "401"), Err: r.err}
	}
}

// ProbeTLS connects to host:port and returns the certificate the TLS
// server presents, without trusting it: a listener's identity, to be
// compared with a known thumbprint.
func ProbeTLS(ctx context.Context, host string, port int) (*x509.Certificate, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: probeTimeout},
		Config:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the certificate is returned to be compared, not trusted
	}
	dctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("the TLS server presented no certificate")
	}
	return certs[0], nil
}
