package wsman

import (
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// pendingReceive starts a Receive that waits (the command is silent) and
// returns its outcome channel.
func pendingReceive(t *testing.T, s *Server, c *rawClient) (string, string, chan error, chan rawResponse) {
	shellID := c.createShell()
	cmdID := c.command(shellID, "testcmd.exe hang")
	errc := make(chan error, 1)
	respc := make(chan rawResponse, 1)
	before := s.RequestCount(OpReceive)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(envelopeTimeout(actionReceive, shellID, "PT30S", "", receiveBody(cmdID))))
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		req.SetBasicAuth(testUser, testPassword)
		resp, err := c.http.Do(req)
		if err != nil {
			errc <- err
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			errc <- err
			return
		}
		respc <- rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
	}()
	waitFor(t, 5*time.Second, "the Receive to arrive", func() bool { return s.RequestCount(OpReceive) > before })
	time.Sleep(50 * time.Millisecond)
	return shellID, cmdID, errc, respc
}

func TestListenerDropFINAndRST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		state ListenerState
		want  func(error) bool
	}{
		{ListenerDropFIN, func(err error) bool { return strings.Contains(err.Error(), "EOF") }},
		{ListenerDropRST, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
	} {
		s, _ := newTestServer(t, Options{})
		c := newRawClient(t, s)
		_, _, errc, respc := pendingReceive(t, s, c)
		s.SetListenerState(tc.state)
		select {
		case err := <-errc:
			if !tc.want(err) {
				t.Errorf("state %d: pending Receive ended with %v", tc.state, err)
			}
		case r := <-respc:
			t.Errorf("state %d: pending Receive answered %d", tc.state, r.status)
		case <-time.After(5 * time.Second):
			t.Fatalf("state %d: pending Receive still waiting", tc.state)
		}
		// New connections are refused.
		if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("state %d: dial after drop: %v", tc.state, err)
		}
	}
}

func TestListenerBlackhole(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	shellID, cmdID, errc, respc := pendingReceive(t, s, c)
	s.SetListenerState(ListenerBlackhole)

	// A new connection is accepted and never answered.
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatalf("blackholed listener refused: %v", err)
	}
	defer conn.Close()
	before := s.RequestCount(OpAny)
	if _, err := io.WriteString(conn, "POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Errorf("blackholed connection answered: %d %v", n, err)
	}
	if s.RequestCount(OpAny) != before {
		t.Error("a blackholed request was processed")
	}
	select {
	case <-errc: //nolint:errcheck // only the end matters here
		t.Fatal("pending Receive ended during the blackhole")
	case <-respc:
		t.Fatal("pending Receive answered during the blackhole")
	default:
	}
	// Back up: connections from the dead period are reset.
	s.SetListenerState(ListenerUp)
	select {
	case err := <-errc:
		if !errors.Is(err, syscall.ECONNRESET) && !strings.Contains(err.Error(), "EOF") {
			t.Errorf("held Receive ended with %v", err)
		}
	case r := <-respc:
		t.Errorf("held Receive answered %d after the blackhole", r.status)
	case <-time.After(5 * time.Second):
		t.Fatal("held Receive never ended")
	}
	// The shell is still there (no DiscardShells): the command goes on.
	r := c.post(envelopeTimeout(actionReceive, shellID, "PT0.2S", "", receiveBody(cmdID)))
	if _, code, _ := faultOf(t, r); code != "2150858793" {
		t.Errorf("Receive after the blackhole: %s", code)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestListenerUnavailable(t *testing.T) {
	t.Parallel()
	s, h := newTestServer(t, Options{})
	c := newRawClient(t, s)
	_, _, errc, respc := pendingReceive(t, s, c)
	s.SetListenerState(ListenerUnavailable)
	check := func(what string, r rawResponse) {
		t.Helper()
		if r.status != 503 || r.header.Get("Content-Type") != "text/html; charset=us-ascii" || r.header.Get("Server") != "Microsoft-HTTPAPI/2.0" ||
			r.body != httpSys503 || !strings.Contains(r.body, "<p>HTTP Error 503. The service is unavailable.</p>") {
			t.Errorf("%s: %d %v\n%s", what, r.status, r.header, r.body)
		}
	}
	select {
	case r := <-respc:
		check("pending Receive", r)
	case err := <-errc:
		t.Fatalf("pending Receive: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("pending Receive not answered")
	}
	n := len(h.requests())
	check("Create", c.post(envelope(actionCreate, "", "", createBody)))
	check("Command", c.post(envelope(actionCommand, newGUID(), "", commandBody("echo hi"))))
	if len(h.requests()) != n {
		t.Error("a command ran while WinRM was unavailable")
	}
	s.SetListenerState(ListenerUp)
	c.createShell()
}

func TestListenerRefusedThenUp(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	if err := s.ListenTLS("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := newRawClient(t, s)
	shellID := c.createShell()
	addr, tlsAddr := s.Addr(), s.TLSAddr()
	s.SetListenerState(ListenerRefused)
	for _, a := range []string{addr, tlsAddr} {
		if _, err := net.DialTimeout("tcp", a, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s while refused: %v", a, err)
		}
	}
	s.SetListenerState(ListenerUp)
	if s.Addr() != addr || s.TLSAddr() != tlsAddr {
		t.Errorf("listeners moved")
	}
	// Shells outlive the listener (the reboot's DiscardShells is the
	// caller's decision).
	if id := c.command(shellID, "echo", "back"); id == "" {
		t.Error("no command after Up")
	}
	conn, err := net.DialTimeout("tcp", tlsAddr, time.Second)
	if err != nil {
		t.Fatalf("HTTPS after Up: %v", err)
	}
	conn.Close()
}

func TestDiscardShellsEndsPendingReceive(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	shellID, _, errc, respc := pendingReceive(t, s, c)
	s.DiscardShells()
	select {
	case r := <-respc:
		root, err := soapxml.Parse([]byte(r.body))
		if err != nil {
			t.Fatal(err)
		}
		r.root = root
		if _, code, msg := faultOf(t, r); code != "2150858843" || msg != ShellNotFoundText(shellID) {
			t.Errorf("pending Receive after DiscardShells: %s %q", code, msg)
		}
	case err := <-errc:
		t.Fatalf("pending Receive: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("pending Receive not answered")
	}
	if s.ShellCount() != 0 {
		t.Error("shells left after DiscardShells")
	}
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) \[`)

// packageGoroutines lists goroutines running code of this package, by ID.
func packageGoroutines() map[string]string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		m := goroutineHeader.FindStringSubmatch(g)
		if m == nil || !strings.Contains(g, "testguest/wsman.") {
			continue
		}
		out[m[1]] = g
	}
	return out
}

// Not parallel: it counts goroutines while no other test runs.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := packageGoroutines()
	h := newTestHost(t)
	s := New(h, Options{Users: map[string]string{testUser: testPassword}, Failf: t.Errorf})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenTLS("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := newRawClient(t, s)
	// A finished command, a running one with stdin open, a pending
	// Receive and a blackholed request.
	sh := c.createShell()
	c.receiveAll(sh, c.command(sh, "testcmd.exe exit 0"))
	cat := c.command(sh, "testcmd.exe cat")
	c.post(envelope(actionSend, sh, "", `<rsp:Send><rsp:Stream Name="stdin" CommandId="`+cat+`">aGk=</rsp:Stream></rsp:Send>`))
	_, _, errc, _ := pendingReceive(t, s, c)
	s.Inject(Injection{Effect: EffectBlackhole})
	go func() {
		req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(envelope(actionCreate, "", "", createBody)))
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		req.SetBasicAuth(testUser, testPassword)
		if resp, err := (&http.Client{}).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, 5*time.Second, "the blackholed request", func() bool { return s.PendingInjections() == 0 })

	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Close hangs")
	}
	select {
	case <-errc: //nolint:errcheck // only the end matters here
	case <-time.After(5 * time.Second):
		t.Error("pending Receive not ended by Close")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("listener still accepting after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var leaked []string
		for id, g := range packageGoroutines() {
			if _, ok := before[id]; !ok && !strings.Contains(g, "TestCloseLeavesNoGoroutines") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
