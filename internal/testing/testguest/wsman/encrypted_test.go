package wsman

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bodgit/ntlmssp"
	ntlmhttp "github.com/bodgit/ntlmssp/http"
	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// The clients here seal with github.com/bodgit/ntlmssp's SecuritySession
// (what masterzen's winrm.NewEncryption uses); the framing of MS-WSMV
// 2.2.9.1.1 is written out below from the specification and pywinrm's
// encryption.py, independently of encrypted.go.

const wsmvBoundary = "--Encrypted Boundary\r\n"

func frameSealed(sig, sealed []byte, plainLen int) []byte {
	var b bytes.Buffer
	b.WriteString(wsmvBoundary)
	b.WriteString("\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n")
	b.WriteString("\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + strconv.Itoa(plainLen) + "\r\n")
	b.WriteString(wsmvBoundary)
	b.WriteString("\tContent-Type: application/octet-stream\r\n")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
	b.Write(sig)
	b.Write(sealed)
	b.WriteString("--Encrypted Boundary--\r\n")
	return b.Bytes()
}

// unframeSealed reads a sealed answer as pywinrm's _decrypt_response does:
// the Length of OriginalContent, the signature, the sealed bytes.
func unframeSealed(body []byte) (sig, sealed []byte, length int, err error) {
	parts := bytes.Split(body, []byte(wsmvBoundary))
	if len(parts) != 3 || len(parts[0]) != 0 {
		return nil, nil, 0, fmt.Errorf("%d parts", len(parts))
	}
	_, l, ok := bytes.Cut(bytes.TrimSpace(parts[1]), []byte("Length="))
	if !ok {
		return nil, nil, 0, errors.New("no Length=")
	}
	if length, err = strconv.Atoi(string(l)); err != nil {
		return nil, nil, 0, err
	}
	payload, ok := bytes.CutPrefix(parts[2], []byte("\tContent-Type: application/octet-stream\r\n"))
	if !ok {
		return nil, nil, 0, errors.New("no octet-stream part")
	}
	payload, ok = bytes.CutSuffix(payload, []byte("--Encrypted Boundary--\r\n"))
	if !ok || len(payload) < 4 {
		return nil, nil, 0, errors.New("no closing boundary")
	}
	n := int(binary.LittleEndian.Uint32(payload))
	if 4+n > len(payload) {
		return nil, nil, 0, errors.New("signature length out of range")
	}
	return payload[4 : 4+n], payload[4+n:], length, nil
}

// sealedClient authenticates with NTLM on one connection (the empty POST
// carrying AUTHENTICATE, as pywinrm's setup_encryption) and then sends
// sealed envelopes on it.
type sealedClient struct {
	t    *testing.T
	url  string
	ntlm *ntlmssp.Client
	http *ntlmhttp.Client
}

func newSealedClient(t *testing.T, s *Server, user, password string) *sealedClient {
	t.Helper()
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, password), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	// A transport of its own: the connection carries the logon.
	hc, err := ntlmhttp.NewClient(&http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}, nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &sealedClient{t: t, url: "http://" + s.Addr() + "/wsman", ntlm: nc, http: hc}
	req, _ := http.NewRequest(http.MethodPost, c.url, nil)
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("empty POST completing the handshake: %d %q", resp.StatusCode, body)
	}
	if c.ntlm.SecuritySession() == nil {
		t.Fatal("no security context after the handshake")
	}
	return c
}

type sealedResponse struct {
	status  int
	close   bool // Connection: close
	header  http.Header
	raw     []byte
	plain   string
	root    *soapxml.Node
	openErr error
}

// post seals envelope (tamper may spoil the signature or the sealed bytes)
// and opens the answer when it is sealed.
func (c *sealedClient) post(envelope string, tamper func(sig, sealed []byte)) sealedResponse {
	c.t.Helper()
	sealed, sig, err := c.ntlm.SecuritySession().Wrap([]byte(envelope))
	if err != nil {
		c.t.Fatal(err)
	}
	if tamper != nil {
		tamper(sig, sealed)
	}
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(frameSealed(sig, sealed, len(envelope))))
	req.Header.Set("Content-Type", `multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"`)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := sealedResponse{status: resp.StatusCode, close: resp.Close, header: resp.Header}
	r.raw, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/encrypted") {
		rsig, rsealed, length, err := unframeSealed(r.raw)
		if err != nil {
			r.openErr = err
			return r
		}
		plain, err := c.ntlm.SecuritySession().Unwrap(rsealed, rsig)
		if err != nil {
			r.openErr = err
			return r
		}
		if len(plain) != length {
			r.openErr = fmt.Errorf("OriginalContent Length=%d, %d bytes unsealed", length, len(plain))
			return r
		}
		r.plain = string(plain)
		r.root, r.openErr = soapxml.Parse(plain)
	}
	return r
}

// TestNTLMSessionSecurity holds the server's half of the security context
// to bodgit's client: the handshake in-process, then messages both ways,
// with and without key exchange.
func TestNTLMSessionSecurity(t *testing.T) {
	t.Parallel()
	for _, keyExch := range []bool{true, false} {
		t.Run(fmt.Sprintf("KEY_EXCH=%v", keyExch), func(t *testing.T) {
			s := New(newTestHost(t), Options{Users: map[string]string{testUser: testPassword}, Failf: t.Errorf})
			c, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(testUser, testPassword), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
			if err != nil {
				t.Fatal(err)
			}
			negotiate, err := c.Authenticate(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			clientFlags := binary.LittleEndian.Uint32(negotiate[12:16])
			if !keyExch {
				// The client adopts the challenge's flags: no KEY_EXCH there,
				// none in the context.
				clientFlags &^= ntlmKeyExch
			}
			serverChallenge := []byte{1, 2, 3, 4, 5, 6, 7, 8}
			challenge := ntlmChallengeMessage(serverChallenge, clientFlags, "WINBAKE", time.Now())
			authenticate, err := c.Authenticate(challenge, nil)
			if err != nil {
				t.Fatal(err)
			}
			user, session, err := s.ntlmVerify(authenticate, serverChallenge, negotiate, challenge)
			if err != nil || user != testUser || session == nil {
				t.Fatalf("verify: %q %v %v", user, session, err)
			}
			if got := session.flags&ntlmKeyExch != 0; got != keyExch {
				t.Fatalf("KEY_EXCH in the context: %v", got)
			}
			if session.flags&ntlmSeal == 0 {
				t.Fatal("sealing was not granted")
			}
			for i := 0; i < 3; i++ {
				msg := bytes.Repeat([]byte(fmt.Sprintf("request %d ", i)), 100+i)
				sealed, sig, err := c.SecuritySession().Wrap(msg)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(sealed, msg) {
					t.Fatal("the client did not seal")
				}
				got, err := session.unseal(sealed, sig)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("client → server %d: %v", i, err)
				}
				answer := bytes.Repeat([]byte(fmt.Sprintf("answer %d ", i)), 200+i)
				sealed, sig = session.seal(answer)
				got, err = c.SecuritySession().Unwrap(sealed, sig)
				if err != nil || !bytes.Equal(got, answer) {
					t.Fatalf("server → client %d: %v", i, err)
				}
			}
			// A replayed message (old sequence number, spent key stream) and
			// a forged signature are refused.
			sealed, sig, _ := c.SecuritySession().Wrap([]byte("once"))
			if _, err := session.unseal(sealed, sig); err != nil {
				t.Fatal(err)
			}
			if _, err := session.unseal(sealed, sig); !errors.Is(err, errNTLMSignature) {
				t.Errorf("replay: %v", err)
			}

			// A MIC that does not verify fails the logon ([MS-NLMP] 3.2.5.1.2).
			c2, _ := ntlmssp.NewClient(ntlmssp.SetUserInfo(testUser, testPassword), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
			negotiate, _ = c2.Authenticate(nil, nil)
			challenge = ntlmChallengeMessage(serverChallenge, clientFlags, "WINBAKE", time.Now())
			authenticate, _ = c2.Authenticate(challenge, nil)
			authenticate[72] ^= 1
			if _, _, err := s.ntlmVerify(authenticate, serverChallenge, negotiate, challenge); err == nil || !strings.Contains(err.Error(), "MIC") {
				t.Errorf("a wrong MIC: %v", err)
			}
		})
	}
}

// TestSealedRequests: a sealed Create is served and answered sealed, a
// fault too; a sealed message whose signature or content was altered gets
// 400 and a closed connection, and does nothing.
func TestSealedRequests(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, h := newTestServer(t, Options{Auth: AuthNTLM, RejectUnencrypted: true, Trace: tr.add})
	c := newSealedClient(t, s, testUser, testPassword)

	r := c.post(envelope(actionCreate, "", "", createBody), nil)
	if r.status != 200 || r.openErr != nil || r.header.Get("Content-Type") != `multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"` {
		t.Fatalf("sealed Create: %d %v %v %q", r.status, r.header, r.openErr, r.raw)
	}
	if bytes.Contains(r.raw, []byte("ShellId")) {
		t.Error("the answer travelled in clear")
	}
	shellID := r.root.FindText(soapxml.NSShell, "ShellId")
	if !upperGUID.MatchString(shellID) || s.ShellCount() != 1 {
		t.Fatalf("sealed Create made shell %q (%d shells)\n%s", shellID, s.ShellCount(), r.plain)
	}
	// A fault is sealed as well (pywinrm unseals 500 bodies).
	r = c.post(envelope(actionCommand, "00000000-0000-0000-0000-000000000000", "", commandBody("echo", "hi")), nil)
	if sub, code, _ := faultOf(t, rawResponse{status: r.status, body: r.plain, root: r.root}); r.status != 500 || sub != "w:InvalidSelectors" || code != "2150858843" {
		t.Errorf("sealed fault: %d %s %s %v", r.status, sub, code, r.openErr)
	}
	// The sequence numbers run on: several more on the same context.
	commandID := ""
	if r = c.post(envelope(actionCommand, shellID, "", commandBody("echo", "sealed")), nil); r.status == 200 {
		commandID = r.root.FindText(soapxml.NSShell, "CommandId")
	}
	if commandID == "" {
		t.Fatalf("sealed Command: %d %v\n%s", r.status, r.openErr, r.plain)
	}
	out, done := "", false
	for i := 0; i < 20 && !done; i++ {
		r = c.post(envelope(actionReceive, shellID, "", receiveBody(commandID)), nil)
		if r.status != 200 || r.openErr != nil {
			t.Fatalf("sealed Receive: %d %v", r.status, r.openErr)
		}
		res := parseReceive(t, r.root)
		for _, it := range res.items {
			out += string(it.data)
		}
		done = res.state == stateDone
	}
	if out != "sealed\r\n" || !done {
		t.Errorf("sealed Receive: %q done=%v", out, done)
	}

	for _, tc := range []struct {
		name   string
		tamper func(sig, sealed []byte)
	}{
		{"checksum", func(sig, _ []byte) { sig[5] ^= 0x40 }},
		{"sequence number", func(sig, _ []byte) { sig[12]++ }},
		{"sealed bytes", func(_, sealed []byte) { sealed[len(sealed)/2] ^= 0x01 }},
	} {
		bad := newSealedClient(t, s, testUser, testPassword)
		before, processes := s.ShellCount(), len(h.requests())
		r := bad.post(envelope(actionCreate, "", "", createBody), tc.tamper)
		if r.status != 400 || len(r.raw) != 0 || !r.close || r.header.Get("Content-Type") != "" {
			t.Errorf("%s altered: %d %v %q", tc.name, r.status, r.header, r.raw)
		}
		if s.ShellCount() != before || len(h.requests()) != processes {
			t.Errorf("%s altered: the request was performed", tc.name)
		}
	}
	// The first client's context is untouched by the others' failures.
	if r := c.post(envelope(actionDelete, shellID, "", ""), nil); r.status != 200 || r.openErr != nil {
		t.Errorf("Delete on the first context: %d %v", r.status, r.openErr)
	}

	// Exchanges are recorded after their answer is sent: Close waits for
	// the last one.
	_ = s.Close()
	sealed, setups := 0, 0
	for _, e := range tr.all() {
		if e.Sealed {
			sealed++
			if !bytes.HasPrefix(e.Request, []byte("<env:Envelope")) || !bytes.Contains(e.Response, []byte("Envelope")) {
				t.Errorf("trace of a sealed exchange is not the plaintext: %q", e.Request[:min(40, len(e.Request))])
			}
		}
		if e.ContextSetup {
			setups++
		}
	}
	if setups != 4 || sealed < 5 {
		t.Errorf("%d handshakes completed by an empty POST, %d sealed exchanges", setups, sealed)
	}
}

// TestClientNTLMSealed runs commands through masterzen's NTLM message
// encryption (winrm.NewEncryption("ntlm")), with AllowUnencrypted false
// (Windows' default) and true: every operation travels sealed.
func TestClientNTLMSealed(t *testing.T) {
	t.Parallel()
	for _, reject := range []bool{true, false} {
		t.Run(fmt.Sprintf("AllowUnencrypted=%v", !reject), func(t *testing.T) {
			t.Parallel()
			var tr traceLog
			s, h := newTestServer(t, Options{RejectUnencrypted: reject, Trace: tr.add})
			hst, port := hostPort(t, s.Addr())
			params := winrm.NewParameters("PT5S", "en-US", 153600)
			params.TransportDecorator = func() winrm.Transporter {
				e, err := winrm.NewEncryption("ntlm")
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: hst, Port: port, Timeout: 30 * time.Second}, testUser, testPassword, params)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				out, _, code, err := c.RunCmdWithContext(ctx, "echo sealed "+strconv.Itoa(i))
				cancel()
				if err != nil || code != 0 || out != "sealed "+strconv.Itoa(i)+"\r\n" {
					t.Fatalf("run %d: out=%q code=%d err=%v", i, out, code, err)
				}
			}
			if n := len(h.requests()); n != 2 {
				t.Errorf("%d processes for 2 commands", n)
			}
			// Exchanges are recorded after their answer is sent: Close
			// waits for the last one.
			_ = s.Close()
			ops := map[Op]int{}
			for _, e := range tr.all() {
				if e.Op == OpUnknown {
					continue
				}
				if !e.Sealed || e.Status != 200 {
					t.Errorf("%v answered %d, sealed %v", e.Op, e.Status, e.Sealed)
				}
				ops[e.Op]++
			}
			if ops[OpCreate] != 2 || ops[OpCommand] != 2 || ops[OpReceive] < 2 || ops[OpDelete] != 2 {
				t.Errorf("sealed operations: %v", ops)
			}
		})
	}
}
