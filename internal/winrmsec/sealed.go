package winrmsec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bodgit/ntlmssp"
	ntlmhttp "github.com/bodgit/ntlmssp/http"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// Dial makes a WinRM connection (net.Dial's signature, masterzen's
// NewClientWithDial): a guestcmd.Transport's, which bounds and aborts the
// requests over it, or nil for a plain net.Dialer.
type Dial = func(network, addr string) (net.Conn, error)

// SealedNTLM returns a maker of WinRM transporters that log on as user
// with NTLM and seal every message with the NTLM session (MS-WSMV
// 2.2.9.1.1, "Negotiate Encrypted Message"): what a WinRM HTTP listener
// with Windows' defaults (Basic off, AllowUnencrypted off) accepts.
//
// It frames messages as masterzen's Encryption and pywinrm do (the stand-in
// reads that layout, internal/testing/testguest/wsman/encrypted.go), but unlike
// masterzen's Encryption it
//   - never sends a message in the clear: a failed NTLM logon is an error
//     (masterzen falls back to unsealed NTLM);
//   - accepts only a sealed answer whose length matches its header;
//   - connects through dial, so that guestcmd bounds each answer
//     (Endpoint.Timeout) and aborts the requests in flight;
//   - is safe for concurrent requests: each Post has a connection and an
//     NTLM context of its own (masterzen shares one context between
//     Posts), which is one handshake per message, as masterzen does, and a
//     connection each: cheap through the forward on the host's loopback,
//     the only place it is used.
//
// The user may be "DOMAIN\user" or "user@domain". It never goes through a
// proxy.
func SealedNTLM(user, password string) func(dial Dial) winrm.Transporter {
	return func(dial Dial) winrm.Transporter {
		if dial == nil {
			dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).Dial
		}
		return &sealedNTLM{user: user, password: password, dial: dial}
	}
}

type sealedNTLM struct {
	user, password string
	dial           Dial
	url            string
	timeout        time.Duration
}

// errSealedHTTPS: over HTTPS, TLS protects the messages; NTLM sealing is
// for the HTTP listener.
var errSealedHTTPS = errors.New("NTLM with encrypted messages is for WinRM over HTTP; over HTTPS use the pinned transport")

func (s *sealedNTLM) Transport(e *winrm.Endpoint) error {
	if e.HTTPS {
		return errSealedHTTPS
	}
	s.url = (&url.URL{Scheme: "http", Host: net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), Path: "/wsman"}).String()
	s.timeout = e.Timeout
	return nil
}

const (
	sealedProtocol    = "application/HTTP-SPNEGO-session-encrypted"
	sealedBoundary    = "--Encrypted Boundary"
	sealedContentType = `multipart/encrypted;protocol="` + sealedProtocol + `";boundary="Encrypted Boundary"`
	sealedOctetHeader = "\tContent-Type: application/octet-stream\r\n"
)

func (s *sealedNTLM) Post(_ *winrm.Client, message *soap.SoapMessage) (string, error) {
	dial := func(_ context.Context, network, addr string) (net.Conn, error) { return s.dial(network, addr) }
	tr := &http.Transport{DialContext: dial, ResponseHeaderTimeout: s.timeout, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	// The logon: an empty POST through the NTLM handshake on this
	// connection (what masterzen and pywinrm send first).
	user, domain := splitUser(s.user)
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, s.password), ntlmssp.SetDomain(domain), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		return "", err
	}
	hx, err := ntlmhttp.NewClient(hc, nc)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, s.url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.Header.Set("Content-Length", "0")
	resp, err := hx.Do(req)
	if err != nil {
		return "", fmt.Errorf("NTLM logon: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	session := nc.SecuritySession()
	if resp.StatusCode != http.StatusOK || !nc.Complete() || session == nil {
		return "", fmt.Errorf("http error %d: the NTLM logon was refused", resp.StatusCode)
	}

	plain := []byte(message.String())
	sealed, signature, err := session.Wrap(plain)
	if err != nil {
		return "", err
	}
	var body bytes.Buffer
	body.WriteString(sealedBoundary + "\r\n")
	body.WriteString("\tContent-Type: " + sealedProtocol + "\r\n")
	fmt.Fprintf(&body, "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n", len(plain))
	body.WriteString(sealedBoundary + "\r\n")
	body.WriteString(sealedOctetHeader)
	_ = binary.Write(&body, binary.LittleEndian, uint32(len(signature)))
	body.Write(signature)
	body.Write(sealed)
	body.WriteString(sealedBoundary + "--\r\n")
	req, err = http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", sealedContentType)
	resp, err = hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("unknown error %w", err)
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("http response error: %d - %w", resp.StatusCode, err)
	}
	if !isSealed(resp.Header.Get("Content-Type")) {
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("http error %d: %s", resp.StatusCode, raw)
		}
		return "", errors.New("WinRM answered an encrypted request in the clear")
	}
	answer, err := unsealAnswer(raw, session)
	if err != nil {
		return "", err
	}
	// As masterzen's HTTP transport: an answer other than 200 (a fault,
	// w:TimedOut for a Receive included) is an error carrying the body.
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("http error %d: %s", resp.StatusCode, answer)
	}
	return string(answer), nil
}

func isSealed(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "multipart/encrypted" && strings.EqualFold(params["protocol"], sealedProtocol)
}

// unsealAnswer reads the parts of a sealed answer (the layout of
// internal/testing/testguest/wsman/encrypted.go) and returns the plaintext.
func unsealAnswer(raw []byte, session *ntlmssp.SecuritySession) ([]byte, error) {
	var out []byte
	rest := raw
	for {
		part, ok := bytes.CutPrefix(rest, []byte(sealedBoundary+"\r\n"))
		if !ok {
			break
		}
		header, payload, ok := bytes.Cut(part, []byte(sealedBoundary+"\r\n"+sealedOctetHeader))
		if !ok {
			return nil, errors.New("a sealed WinRM answer without its octet-stream part")
		}
		_, lengthText, ok := bytes.Cut(header, []byte("Length="))
		if !ok {
			return nil, errors.New("a sealed WinRM answer without OriginalContent's Length")
		}
		length, err := strconv.Atoi(string(bytes.TrimSpace(lengthText)))
		if err != nil || length < 0 {
			return nil, fmt.Errorf("a sealed WinRM answer's Length %q", bytes.TrimSpace(lengthText))
		}
		if len(payload) < 4 {
			return nil, errors.New("a sealed WinRM answer shorter than its signature")
		}
		sigLen := int(binary.LittleEndian.Uint32(payload[:4]))
		if 4+sigLen+length > len(payload) {
			return nil, errors.New("a sealed WinRM answer shorter than its Length")
		}
		signature := payload[4 : 4+sigLen]
		sealed := payload[4+sigLen : 4+sigLen+length]
		plain, err := session.Unwrap(sealed, signature)
		if err != nil {
			return nil, fmt.Errorf("a sealed WinRM answer: %w", err)
		}
		out = append(out, plain...)
		rest = payload[4+sigLen+length:]
	}
	if !bytes.Equal(rest, []byte(sealedBoundary+"--\r\n")) || out == nil {
		return nil, errors.New("a sealed WinRM answer not in MS-WSMV 2.2.9.1.1's layout")
	}
	return out, nil
}

// splitUser splits "DOMAIN\user" and "user@domain".
func splitUser(s string) (user, domain string) {
	if u, d, ok := strings.Cut(s, "@"); ok {
		return u, d
	}
	if d, u, ok := strings.Cut(s, `\`); ok {
		return u, d
	}
	return s, ""
}
