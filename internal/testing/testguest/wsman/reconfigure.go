package wsman

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
)

// The WinRM service applies a configuration change to the requests that
// come after it: `winrm set winrm/config/service/auth @{Basic="false"}`
// refuses the next Basic request, including one on a connection that is
// open already, as the service checks every request's credentials and
// encryption ([MS-WSMV] 3.1.4: authentication and, over HTTP, encryption
// are per message). A caller that models the simulated Windows'
// configuration calls these methods when it changes.

func (s *Server) authMethods() AuthMethods { return AuthMethods(s.auth.Load()) }

func (s *Server) rejectsUnencrypted() bool { return s.rejectUnencrypted.Load() }

// SetAuthentication changes the accepted schemes (Service/Auth) and
// whether unencrypted messages over HTTP are refused
// (Service/AllowUnencrypted=false) for every later request. auth 0 accepts
// no scheme at all: every request gets 401.
func (s *Server) SetAuthentication(auth AuthMethods, rejectUnencrypted bool) {
	s.auth.Store(int64(auth))
	s.rejectUnencrypted.Store(rejectUnencrypted)
}

// SetTLSCertificate is the HTTPS listener's certificate and key (a
// listener's CertificateThumbprint names it in the machine's store). It
// must be set before ListenTLS; without it ListenTLS makes a self-signed
// one.
func (s *Server) SetTLSCertificate(cert tls.Certificate) error {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("wsman: a TLS certificate needs its certificate and private key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.listeners {
		if sl.tls {
			return errors.New("wsman: the HTTPS listener runs already; close it first")
		}
	}
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return nil
}

// CloseListener removes the HTTP (useTLS false) or HTTPS listener, as
// deleting a WinRM listener does: its port stops accepting connections.
// What HTTP.sys does with connections already established on a listener
// that is removed is not documented; the stand-in resets them at once,
// in-flight requests included, the harshest outcome, so that nothing
// depends on a session outliving its listener. A later SetTLSCertificate
// and ListenTLS start an HTTPS listener afresh.
func (s *Server) CloseListener(useTLS bool) {
	s.mu.Lock()
	var kept []*listenerSlot
	var gone []*listenerSlot
	for _, sl := range s.listeners {
		if sl.tls == useTLS {
			gone = append(gone, sl)
			continue
		}
		kept = append(kept, sl)
	}
	s.listeners = kept
	for _, sl := range gone {
		if sl.listener != nil {
			_ = sl.listener.Close()
			sl.listener = nil
		}
		for c := range s.conns {
			if c.slot == sl {
				c.closeRaw(true)
				delete(s.conns, c)
			}
		}
	}
	if useTLS && len(gone) > 0 {
		s.tlsConfig, s.certPEM = nil, nil
	}
	s.mu.Unlock()
}
