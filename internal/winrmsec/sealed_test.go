package winrmsec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// wire records every byte a dial's connections send.
type wire struct {
	mu    sync.Mutex
	sent  bytes.Buffer
	conns int
}

func (w *wire) dial(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.conns++
	w.mu.Unlock()
	return &recordingConn{Conn: c, w: w}, nil
}

func (w *wire) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent.String()
}

type recordingConn struct {
	net.Conn
	w *wire
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.w.mu.Lock()
	c.w.sent.Write(b)
	c.w.mu.Unlock()
	return c.Conn.Write(b)
}

func sealedClient(t *testing.T, host string, port int, user, pw string, dial Dial) *winrm.Client {
	t.Helper()
	params := *winrm.DefaultParameters
	mk := SealedNTLM(user, pw)
	params.TransportDecorator = func() winrm.Transporter { return mk(dial) }
	client, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: host, Port: port, Timeout: 30 * time.Second}, user, pw, &params)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Over the dial it is given, the sealed transport runs commands on a
// listener with Windows' defaults, several at once, and no command, no
// SOAP text and no password crosses the connection in the clear; a wrong
// password fails the logon without a message sent (masterzen's Encryption
// would send it unsealed).
func TestSealedNTLM(t *testing.T) {
	ctx := context.Background()
	g := testguest.StartForTest(t, testguest.Options{Server: wsman.Options{Auth: wsman.AuthNTLM, RejectUnencrypted: true}})
	host, port := g.HostPort()
	user, pw := g.Credentials()
	w := &wire{}
	client := sealedClient(t, host, port, user, pw, w.dial)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, _, code, err := client.RunCmdWithContext(ctx, fmt.Sprintf("echo sealed-%d", i))
			if err != nil || code != 0 || !strings.Contains(out, fmt.Sprintf("sealed-%d", i)) {
				errs <- fmt.Errorf("command %d: %q %d %v", i, out, code, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sent := w.text()
	for _, clear := range []string{"echo sealed", "Envelope", "schemas.xmlsoap.org", pw} {
		if strings.Contains(sent, clear) {
			t.Errorf("%q went over the connection in the clear", clear)
		}
	}
	if w.conns == 0 || !strings.Contains(sent, "multipart/encrypted") {
		t.Errorf("%d connections through the dial; sent %d bytes", w.conns, len(sent))
	}

	wrong := &wire{}
	bad := sealedClient(t, host, port, user, pw+"x", wrong.dial)
	if _, _, _, err := bad.RunCmdWithContext(ctx, "echo never"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong password: %v", err)
	}
	if strings.Contains(wrong.text(), "Envelope") {
		t.Error("with a wrong password a message went out in the clear")
	}

	// HTTPS is not its business.
	params := *winrm.DefaultParameters
	params.TransportDecorator = SealedNTLMTransport(user, pw)
	if _, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: host, Port: port, HTTPS: true}, user, pw, &params); err == nil {
		t.Error("an HTTPS endpoint was taken")
	}
}

// An answer in the clear to a sealed request is refused, not read.
func TestSealedNTLMRefusesClearAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					req := string(buf[:n])
					switch {
					case strings.Contains(req, "Authorization: Negotiate TlRMTVNTUAABAAAA"): // NEGOTIATE
						_, _ = fmt.Fprintf(c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate %s\r\nContent-Length: 0\r\n\r\n",
							base64.StdEncoding.EncodeToString(challengeMessage()))
					case strings.Contains(req, "Authorization: Negotiate"): // AUTHENTICATE: taken as is
						_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
					case strings.Contains(req, "multipart/encrypted"):
						body := "<s:Envelope>in the clear</s:Envelope>"
						_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					default:
						_, _ = c.Write([]byte("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"))
					}
				}
			}(c)
		}
	}()
	host, port := hostPort(t, l.Addr().String())
	client := sealedClient(t, host, port, "Administrator", "pw", nil)
	if _, err := client.CreateShell(); err == nil || !strings.Contains(err.Error(), "in the clear") {
		t.Errorf("an answer in the clear: %v", err)
	}
}

// challengeMessage is an NTLM CHALLENGE ([MS-NLMP] 2.2.1.2) granting
// signing and sealing, enough for the client to finish its logon and seal.
func challengeMessage() []byte {
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	name := []byte{'W', 0, 'I', 0, 'N', 0}
	av(2, name) // MsvAvNbDomainName
	av(1, name) // MsvAvNbComputerName
	ft := make([]byte, 8)
	binary.LittleEndian.PutUint64(ft, uint64(time.Now().UnixNano()/100)+116444736000000000)
	av(7, ft) // MsvAvTimestamp
	av(0, nil)
	const fixed = 56
	var b bytes.Buffer
	b.WriteString("NTLMSSP\x00")
	_ = binary.Write(&b, binary.LittleEndian, uint32(2))
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(name)))
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(name)))
	_ = binary.Write(&b, binary.LittleEndian, uint32(fixed))
	// UNICODE, REQUEST_TARGET, SIGN, SEAL, NTLM, ALWAYS_SIGN, TARGET_TYPE_DOMAIN,
	// EXTENDED_SESSIONSECURITY, TARGET_INFO, VERSION, 128, KEY_EXCH, 56
	_ = binary.Write(&b, binary.LittleEndian, uint32(0x1|0x4|0x10|0x20|0x200|0x8000|0x10000|0x80000|0x800000|0x2000000|0x20000000|0x40000000|0x80000000))
	b.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	b.Write(make([]byte, 8))
	_ = binary.Write(&b, binary.LittleEndian, uint16(info.Len()))
	_ = binary.Write(&b, binary.LittleEndian, uint16(info.Len()))
	_ = binary.Write(&b, binary.LittleEndian, uint32(fixed+len(name)))
	b.Write([]byte{10, 0, 0x63, 0x45, 0, 0, 0, 15})
	b.Write(name)
	b.Write(info.Bytes())
	return b.Bytes()
}
