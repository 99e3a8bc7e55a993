package wsman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// The masterzen client as winbake and Packer use it: Create → Command →
// Receive… → Signal → Delete, one shell per command.

func TestClientRunsCommands(t *testing.T) {
	t.Parallel()
	s, h := newTestServer(t, Options{})
	c := newClient(t, s, nil, 0)
	ctx := context.Background()

	out, errOut, code, err := c.RunCmdWithContext(ctx, "echo hi")
	if err != nil || code != 0 || out != "hi\r\n" || errOut != "" {
		t.Fatalf("echo hi: out=%q err=%q code=%d error=%v", out, errOut, code, err)
	}
	out, errOut, code, err = c.RunCmdWithContext(ctx, "echo out && echo err>&2 && exit 1")
	if err != nil || code != 1 || out != "out \r\n" || errOut != "err \r\n" {
		t.Fatalf("stderr_rc: out=%q err=%q code=%d error=%v", out, errOut, code, err)
	}
	// winrm.Powershell: -EncodedCommand of UTF-16LE with the progress prefix.
	out, _, code, err = c.RunPSWithContext(ctx, "Write-Output hello; exit 7")
	if err != nil || code != 7 || out != "hello\r\n" {
		t.Fatalf("PowerShell: out=%q code=%d error=%v", out, code, err)
	}
	reqs := h.requests()
	if len(reqs) != 3 {
		t.Fatalf("host started %d processes, want 3", len(reqs))
	}
	for _, r := range reqs {
		// masterzen's Create and Command options, passed on.
		if r.Codepage != 65001 || r.NoProfile || r.SkipCmdShell || r.User != testUser || r.ShellID == "" {
			t.Errorf("CommandRequest %+v", r)
		}
	}
	if n := s.ShellCount(); n != 0 {
		t.Errorf("%d shells left open after Run", n)
	}
}

func TestClientLargeChunkedOutput(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	var tr traceLog
	s, _ := newTestServer(t, Options{Trace: tr.add, ChunkSize: 7001})
	c := newClient(t, s, nil, 0)
	var stdout, stderr bytes.Buffer
	code, err := c.RunWithContext(context.Background(), fmt.Sprintf("testcmd.exe emit both %d 42", size), &stdout, &stderr)
	if err != nil || code != 0 {
		t.Fatalf("code=%d err=%v", code, err)
	}
	if !bytes.Equal(stdout.Bytes(), testData(size, 42)) {
		t.Errorf("stdout: %d bytes differ from the %d written", stdout.Len(), size)
	}
	if !bytes.Equal(stderr.Bytes(), testData(size, 43)) {
		t.Errorf("stderr: %d bytes differ from the %d written", stderr.Len(), size)
	}
	receives := 0
	for _, e := range tr.all() {
		if e.Op != OpReceive || e.Status != 200 {
			continue
		}
		receives++
		if len(e.Response) > 153600 {
			t.Errorf("Receive response of %d bytes exceeds MaxEnvelopeSize 153600", len(e.Response))
		}
		root, err := soapxml.Parse(e.Response)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range parseReceive(t, root).items {
			if len(it.data) > 7001 {
				t.Errorf("stream element of %d bytes, ChunkSize is 7001", len(it.data))
			}
		}
	}
	if receives < 15 {
		t.Errorf("2 MiB arrived in %d Receives", receives)
	}
}

func TestClientSplitsInsideUTF8(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, _ := newTestServer(t, Options{Trace: tr.add, ChunkSize: 5})
	c := newClient(t, s, nil, 0)
	out, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe unicode")
	if err != nil || code != 0 || out != "こんにちは, grüße €😀\r\n" {
		t.Fatalf("out=%q code=%d err=%v", out, code, err)
	}
	split := false
	for _, e := range tr.all() {
		if e.Op == OpReceive && e.Status == 200 {
			root, _ := soapxml.Parse(e.Response)
			for _, it := range parseReceive(t, root).items {
				if len(it.data) > 0 && !utf8.Valid(it.data) {
					split = true
				}
			}
		}
	}
	if !split {
		t.Error("no stream element ends inside a UTF-8 sequence")
	}
}

func TestClientExitCodesAreUnsigned(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newClient(t, s, nil, 0)
	for _, want := range []uint32{0, 1641, 3010, 2359302, 2149842967, 2148468766, 4294967295} {
		_, _, code, err := c.RunCmdWithContext(context.Background(), fmt.Sprintf("testcmd.exe exit %d", want))
		if err != nil || code != int(want) {
			t.Errorf("exit %d: code=%d err=%v", want, code, err)
		}
	}
}

func TestClientSurvivesReceiveTimeouts(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, _ := newTestServer(t, Options{Trace: tr.add})
	c := newClient(t, s, winrm.NewParameters("PT0.5S", "en-US", 153600), 0)
	out, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe sleep 1250 3010 done")
	if err != nil || code != 3010 || out != "done\r\n" {
		t.Fatalf("out=%q code=%d err=%v", out, code, err)
	}
	timedOut := 0
	for _, e := range tr.all() {
		if e.Op == OpReceive && e.Status == 500 {
			if !strings.Contains(string(e.Response), "<s:Value>w:TimedOut</s:Value>") || !strings.Contains(string(e.Response), TimedOutText+"</f:Message>") {
				t.Errorf("Receive fault is not the timeout fault:\n%s", e.Response)
			}
			timedOut++
		}
	}
	if timedOut != 2 {
		t.Errorf("%d TimedOut faults, want 2 (1.25 s of silence, 0.5 s OperationTimeout)", timedOut)
	}
}

func TestClientEffectiveTimeoutIsCappedByMaxTimeout(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, _ := newTestServer(t, Options{Trace: tr.add, MaxTimeout: 300 * time.Millisecond})
	c := newClient(t, s, winrm.NewParameters("PT30M", "en-US", 153600), 0)
	start := time.Now()
	out, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe sleep 800 0 late")
	if err != nil || code != 0 || out != "late\r\n" {
		t.Fatalf("out=%q code=%d err=%v", out, code, err)
	}
	timedOut := 0
	for _, e := range tr.all() {
		if e.Op == OpReceive && e.Status == 500 {
			timedOut++
		}
	}
	if timedOut < 2 || time.Since(start) > 5*time.Second {
		t.Errorf("%d TimedOut faults in %v: PT30M must be capped at MaxTimeout 300ms", timedOut, time.Since(start))
	}
}

func TestClientDropFINMidReceive(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	s.Inject(Injection{Op: OpReceive, Effect: EffectDropFIN})
	c := newClient(t, s, nil, 0)
	_, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe sleep 100 0 x")
	if code != 16001 || err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("code=%d err=%v, want 16001 and EOF", code, err)
	}
}

func TestClientDropRSTMidReceive(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	s.Inject(Injection{Op: OpReceive, Effect: EffectDropRST, Delay: 50 * time.Millisecond})
	c := newClient(t, s, nil, 0)
	_, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe sleep 100 0 x")
	if code != 0 || err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("code=%d err=%v, want 0 and connection reset", code, err)
	}
}

func TestClientListenerDropsPendingReceive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		state ListenerState
		code  int
		err   string
	}{
		{ListenerDropFIN, 16001, "EOF"},
		{ListenerDropRST, 0, "connection reset"},
	} {
		s, _ := newTestServer(t, Options{})
		c := newClient(t, s, nil, 0)
		type result struct {
			code int
			err  error
		}
		done := make(chan result, 1)
		go func() {
			_, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe hang")
			done <- result{code, err}
		}()
		waitFor(t, 5*time.Second, "a pending Receive", func() bool { return s.RequestCount(OpReceive) >= 1 })
		time.Sleep(50 * time.Millisecond)
		s.SetListenerState(tc.state)
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: client still waiting", tc.state)
		}
		if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.err) {
			t.Errorf("state %d: code=%d err=%v, want %d and %q", tc.state, r.code, r.err, tc.code, tc.err)
		}
		// The following Signal and Delete found the listener gone.
		s.SetListenerState(ListenerUp)
		if n := s.ShellCount(); n != 1 {
			t.Errorf("state %d: %d shells, want the one whose Delete was refused", tc.state, n)
		}
	}
}

func TestClientUnavailable503(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newClient(t, s, nil, 0)
	s.SetListenerState(ListenerUnavailable)
	_, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi")
	if err == nil || err.Error() != "http response error: 503 - invalid content type" {
		t.Fatalf("err=%v", err)
	}
	s.SetListenerState(ListenerUp)
	if out, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi"); err != nil || out != "hi\r\n" {
		t.Fatalf("after Up: out=%q err=%v", out, err)
	}
	// The same page for one injected request.
	s.Inject(Injection{Op: OpCreate, Effect: EffectUnavailable})
	if _, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi"); err == nil || !strings.Contains(err.Error(), "503 - invalid content type") {
		t.Fatalf("injected 503: err=%v", err)
	}
}

func TestClientUnauthorized(t *testing.T) {
	t.Parallel()
	s, h := newTestServer(t, Options{})
	hst, port := hostPort(t, s.Addr())
	c, err := winrm.NewClient(&winrm.Endpoint{Host: hst, Port: port}, testUser, "wrong")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = c.RunCmdWithContext(context.Background(), "echo hi")
	if err == nil || err.Error() != "http response error: 401 - invalid content type" {
		t.Fatalf("err=%v", err)
	}
	if len(h.requests()) != 0 {
		t.Error("an unauthenticated request started a process")
	}
}

func TestClientNTLM(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, h := newTestServer(t, Options{Auth: AuthNTLM, Trace: tr.add})
	hst, port := hostPort(t, s.Addr())
	params := winrm.NewParameters("PT5S", "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: hst, Port: port}, testUser, testPassword, params)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		out, _, code, err := c.RunCmdWithContext(context.Background(), "echo hi")
		if err != nil || code != 0 || out != "hi\r\n" {
			t.Fatalf("run %d: out=%q code=%d err=%v", i, out, code, err)
		}
	}
	if n := len(h.requests()); n != 2 {
		t.Errorf("%d processes for 2 commands: side effects ran on handshake legs", n)
	}
	unauthorized, served := 0, 0
	for _, e := range tr.all() {
		switch e.Status {
		case 401:
			unauthorized++
		case 200:
			served++
			if e.User != testUser {
				t.Errorf("request served as %q", e.User)
			}
		}
	}
	// One handshake (anonymous → 401, negotiate → 401 challenge) per TCP
	// connection; later requests on it carry no Authorization.
	if unauthorized == 0 || unauthorized > 2*3 || served < 10 {
		t.Errorf("%d 401s for %d served requests: NTLM must be bound to the connection", unauthorized, served)
	}

	// A new connection per request forces a handshake each time.
	s2, _ := newTestServer(t, Options{Auth: AuthNTLM, KeepAliveRequests: 1, Trace: tr.add})
	hst, port = hostPort(t, s2.Addr())
	c2, _ := winrm.NewClientWithParameters(&winrm.Endpoint{Host: hst, Port: port}, testUser, testPassword, params)
	before := len(tr.all())
	if out, _, _, err := c2.RunCmdWithContext(context.Background(), "echo hi"); err != nil || out != "hi\r\n" {
		t.Fatalf("KeepAliveRequests=1: out=%q err=%v", out, err)
	}
	u, ok := 0, 0
	for _, e := range tr.all()[before:] {
		switch e.Status {
		case 401:
			u++
		case 200:
			ok++
		}
	}
	if u != 2*ok {
		t.Errorf("%d 401s for %d requests on fresh connections, want two each", u, ok)
	}

	// Wrong password: the handshake ends in 401.
	bad, _ := winrm.NewClientWithParameters(&winrm.Endpoint{Host: hst, Port: port}, testUser, "wrong", params)
	if _, _, _, err := bad.RunCmdWithContext(context.Background(), "echo hi"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong NTLM password: err=%v", err)
	}
}

func TestClientHTTPS(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	if err := s.ListenTLS("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	hst, port := hostPort(t, s.TLSAddr())
	for _, ep := range []*winrm.Endpoint{
		{Host: hst, Port: port, HTTPS: true, CACert: s.CertificatePEM()},
		{Host: hst, Port: port, HTTPS: true, Insecure: true},
	} {
		c, err := winrm.NewClient(ep, testUser, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if out, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi"); err != nil || out != "hi\r\n" {
			t.Fatalf("HTTPS (insecure=%v): out=%q err=%v", ep.Insecure, out, err)
		}
	}
	// Without the certificate the client refuses the listener.
	c, _ := winrm.NewClient(&winrm.Endpoint{Host: hst, Port: port, HTTPS: true}, testUser, testPassword)
	if _, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unverified HTTPS: err=%v", err)
	}
}

func TestClientStdin(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newClient(t, s, nil, 0)
	out, _, code, err := c.RunWithContextWithString(context.Background(), "testcmd.exe cat", "hello\r\nworld")
	if err != nil || code != 0 || out != "hello\r\nworld" {
		t.Fatalf("out=%q code=%d err=%v", out, code, err)
	}
	// More than one envelope of stdin: masterzen sends EnvelopeSize-1000
	// byte pieces, then an empty Send with End="true".
	big := string(testData(400000, 9))
	out, _, code, err = c.RunWithContextWithString(context.Background(), "testcmd.exe cat", big)
	if err != nil || code != 0 || out != big {
		t.Fatalf("large stdin: %d bytes back of %d, code=%d err=%v", len(out), len(big), code, err)
	}
	if n := s.RequestCount(OpSend); n < 5 {
		t.Errorf("%d Send requests for 400 kB of stdin", n)
	}
}

func TestClientSelectorOnlyCreate(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, _ := newTestServer(t, Options{SelectorOnlyCreate: true, Trace: tr.add})
	c := newClient(t, s, nil, 0)
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatalf("CreateShell: %v", err)
	}
	var created []byte
	for _, e := range tr.all() {
		if e.Op == OpCreate {
			created = e.Response
		}
	}
	id, err := winrm.ParseOpenShellResponse(string(created))
	if err != nil || id != "" {
		t.Fatalf("masterzen reads shell ID %q (err %v) from a WMF 2.0 CreateResponse, want \"\"", id, err)
	}
	root, _ := soapxml.Parse(created)
	if sel := root.Find(soapxml.NSWSMan, "Selector"); sel == nil || !upperGUID.MatchString(sel.Text) {
		t.Fatalf("no ShellId selector in\n%s", created)
	}
	// Going on with the empty ID: requests without a ShellId selector fail.
	_, err = shell.ExecuteWithContext(context.Background(), "echo hi")
	if !strings.Contains(errText(err), `Code="2150858843"`) {
		t.Fatalf("Command with empty shell ID: err=%v", errText(err))
	}
}

func TestClientQuotas(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{MaxShellsPerUser: 2, MaxConcurrentOperationsPerUser: 3})
	c := newClient(t, s, nil, 0)
	var shells []*winrm.Shell
	for i := 0; i < 2; i++ {
		sh, err := c.CreateShell()
		if err != nil {
			t.Fatal(err)
		}
		shells = append(shells, sh)
	}
	_, err := c.CreateShell()
	if !strings.Contains(errText(err), `Code="2150859173"`) ||
		!strings.Contains(errText(err), "This user is allowed a maximum number of 2 concurrent shells, which has been exceeded.") {
		t.Fatalf("third shell: err=%v", errText(err))
	}
	for i := 0; i < 3; i++ {
		cmd, err := shells[0].ExecuteWithContext(context.Background(), "testcmd.exe exit 0")
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		cmd.Wait()
	}
	_, err = shells[0].ExecuteWithContext(context.Background(), "testcmd.exe exit 0")
	if !strings.Contains(errText(err), `Code="2150859174"`) ||
		!strings.Contains(errText(err), "maximum number of 3 concurrent operations") {
		t.Fatalf("fourth operation: err=%v", errText(err))
	}
	// Deleting the shell releases both quotas.
	if err := shells[0].Close(); err != nil {
		t.Fatal(err)
	}
	sh, err := c.CreateShell()
	if err != nil {
		t.Fatalf("after Delete: %v", err)
	}
	cmd, err := sh.ExecuteWithContext(context.Background(), "testcmd.exe exit 0")
	if err != nil {
		t.Fatalf("after Delete: %v", err)
	}
	cmd.Wait()
}

func TestClientRefused(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	addr := s.Addr()
	c := newClient(t, s, nil, 0)
	s.SetListenerState(ListenerRefused)
	_, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.HasPrefix(err.Error(), "unknown error Post") {
		t.Fatalf("err=%v", err)
	}
	s.SetListenerState(ListenerUp)
	if s.Addr() != addr {
		t.Fatalf("listener moved from %s to %s", addr, s.Addr())
	}
	if out, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi"); err != nil || out != "hi\r\n" {
		t.Fatalf("after Up: out=%q err=%v", out, err)
	}
}

func TestClientResendsBlackholedReceive(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	s.Inject(Injection{Op: OpReceive, Effect: EffectBlackhole, Times: 2})
	// Endpoint.Timeout (ResponseHeaderTimeout) above the OperationTimeout,
	// as winbake's own client sets it.
	c := newClient(t, s, winrm.NewParameters("PT0.3S", "en-US", 153600), 700*time.Millisecond)
	out, _, code, err := c.RunCmdWithContext(context.Background(), "testcmd.exe sleep 200 0 answered")
	if err != nil || code != 0 || out != "answered\r\n" {
		t.Fatalf("out=%q code=%d err=%v", out, code, err)
	}
	if n := s.RequestCount(OpReceive); n < 3 {
		t.Errorf("%d Receives, want the 2 blackholed ones re-sent", n)
	}
}

func TestClientAfterDiscardShells(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, _ := newTestServer(t, Options{Trace: tr.add})
	c := newClient(t, s, nil, 0)
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := shell.ExecuteWithContext(context.Background(), "testcmd.exe exit 0")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	s.DiscardShells()
	_, err = shell.ExecuteWithContext(context.Background(), "echo hi")
	if !strings.Contains(errText(err), `Code="2150858843"`) || !strings.Contains(errText(err), "failed because the shell was not found on the server") {
		t.Fatalf("Command after reboot: err=%v", errText(err))
	}
	// masterzen ignores the status of Delete (and of Signal): a 500 fault
	// comes back as a nil error. The server answered the fault.
	_ = shell.Close()
	all := tr.all()
	last := all[len(all)-1]
	if last.Op != OpDelete || last.Status != 500 || !strings.Contains(string(last.Response), `Code="2150858843"`) {
		t.Fatalf("Delete after reboot: %s %d\n%s", last.Op, last.Status, last.Response)
	}
}

func TestClientCommandLineTooLong(t *testing.T) {
	t.Parallel()
	s, h := newTestServer(t, Options{})
	c := newClient(t, s, nil, 0)
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer shell.Close()
	_, err = shell.ExecuteWithContext(context.Background(), "echo "+strings.Repeat("x", 32760))
	if !strings.Contains(errText(err), `Code="2147942606"`) || !strings.Contains(errText(err), "The filename or extension is too long. </f:ProviderFault>") {
		t.Fatalf("err=%v", errText(err))
	}
	if len(h.requests()) != 0 {
		t.Error("the host was asked to start a 32 k command line")
	}
}

// errText is an error with the SOAP fault masterzen keeps in
// ExecuteCommandError.Body: it returns a 500 fault body as a response, and
// the parser turns the fault Action into "received error response".
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	var ece *winrm.ExecuteCommandError
	if errors.As(err, &ece) {
		return err.Error() + ": " + ece.Body
	}
	return err.Error()
}

// masterzen treats every Receive fault like the timeout fault: after a
// reboot nobody announced (DiscardShells while a command runs) it polls
// until its context ends. winbake's client must bound commands itself.
func TestClientRetriesReceiveFaults(t *testing.T) {
	t.Parallel()
	var tr traceLog
	s, _ := newTestServer(t, Options{Trace: tr.add})
	c := newClient(t, s, nil, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, _, err := c.RunCmdWithContext(ctx, "testcmd.exe hang")
		done <- err
	}()
	waitFor(t, 5*time.Second, "a pending Receive", func() bool { return s.RequestCount(OpReceive) >= 1 })
	time.Sleep(50 * time.Millisecond)
	s.DiscardShells()
	waitFor(t, 5*time.Second, "Receives after the shell vanished", func() bool { return s.RequestCount(OpReceive) >= 10 })
	select {
	case err := <-done:
		t.Fatalf("client gave up on its own: %v", err)
	default:
	}
	for _, e := range tr.all() {
		if e.Op == OpReceive && e.Status == 500 && !strings.Contains(string(e.Response), `Code="2150858843"`) {
			t.Errorf("Receive after DiscardShells answered:\n%s", e.Response)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err=%v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client ignores its context")
	}
}
