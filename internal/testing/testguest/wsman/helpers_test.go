package wsman

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

const (
	testUser     = "vagrant"
	testPassword = "vagrant"
)

// newTestServer starts a server on 127.0.0.1 with the test host. Failf is
// t.Errorf unless opts sets it.
func newTestServer(t *testing.T, opts Options) (*Server, *testHost) {
	t.Helper()
	h := newTestHost(t)
	if opts.Users == nil {
		opts.Users = map[string]string{testUser: testPassword}
	}
	if opts.Failf == nil {
		opts.Failf = t.Errorf
	}
	s := New(h, opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, h
}

// failRecorder collects Failf calls for tests that provoke them.
type failRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (f *failRecorder) Failf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *failRecorder) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.msgs
	f.msgs = nil
	return m
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// newClient is a masterzen client for s with Basic auth.
func newClient(t *testing.T, s *Server, params *winrm.Parameters, timeout time.Duration) *winrm.Client {
	t.Helper()
	h, p := hostPort(t, s.Addr())
	if params == nil {
		params = winrm.NewParameters("PT5S", "en-US", 153600)
	}
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: h, Port: p, Timeout: timeout}, testUser, testPassword, params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawClient posts hand-made envelopes.
type rawClient struct {
	t    *testing.T
	url  string
	http *http.Client
	user string
	pass string
}

func newRawClient(t *testing.T, s *Server) *rawClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawClient{t: t, url: "http://" + s.Addr() + "/wsman", http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, user: testUser, pass: testPassword}
}

type rawResponse struct {
	status int
	close  bool // Connection: close
	header http.Header
	body   string
	root   *soapxml.Node
}

func (c *rawClient) post(body string) rawResponse {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(c.user, c.pass)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	r := rawResponse{status: resp.StatusCode, close: resp.Close, header: resp.Header, body: string(b)}
	if strings.Contains(resp.Header.Get("Content-Type"), "soap+xml") {
		r.root, err = soapxml.Parse(b)
		if err != nil {
			c.t.Fatalf("response is not XML: %v\n%s", err, b)
		}
	}
	return r
}

// Envelope templates in masterzen's prefixes.
func envelope(action, shellID, extraHeader, body string) string {
	return envelopeTimeout(action, shellID, "PT5S", extraHeader, body)
}

func envelopeTimeout(action, shellID, timeout, extraHeader, body string) string {
	var b strings.Builder
	b.WriteString(`<env:Envelope xmlns:env="` + soapxml.NSSOAP + `" xmlns:a="` + soapxml.NSAddressing + `" xmlns:rsp="` + soapxml.NSShell + `" xmlns:w="` + soapxml.NSWSMan + `" xmlns:p="` + soapxml.NSMSWSMan + `"><env:Header>`)
	b.WriteString(`<a:To>http://127.0.0.1/wsman</a:To><a:ReplyTo><a:Address mustUnderstand="true">` + anonymous + `</a:Address></a:ReplyTo>`)
	b.WriteString(`<w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize><w:OperationTimeout>` + timeout + `</w:OperationTimeout>`)
	b.WriteString(`<a:MessageID>uuid:` + strings.ToLower(newGUID()) + `</a:MessageID><w:Locale mustUnderstand="false" xml:lang="en-US"/><p:DataLocale mustUnderstand="false" xml:lang="en-US"/>`)
	b.WriteString(`<a:Action mustUnderstand="true">` + action + `</a:Action>`)
	if shellID != "" {
		b.WriteString(`<w:SelectorSet><w:Selector Name="ShellId">` + shellID + `</w:Selector></w:SelectorSet>`)
	}
	b.WriteString(`<w:ResourceURI mustUnderstand="true">` + cmdResource + `</w:ResourceURI>` + extraHeader + `</env:Header><env:Body>` + body + `</env:Body></env:Envelope>`)
	return b.String()
}

const createBody = `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`

func commandBody(command string, args ...string) string {
	var b strings.Builder
	b.WriteString(`<rsp:CommandLine><rsp:Command><![CDATA[` + command + `]]></rsp:Command>`)
	for _, a := range args {
		b.WriteString(`<rsp:Arguments><![CDATA[` + a + `]]></rsp:Arguments>`)
	}
	b.WriteString(`</rsp:CommandLine>`)
	return b.String()
}

func receiveBody(commandID string) string {
	return `<rsp:Receive><rsp:DesiredStream CommandId="` + commandID + `">stdout stderr</rsp:DesiredStream></rsp:Receive>`
}

// createShell opens a shell and returns its ID.
func (c *rawClient) createShell() string {
	c.t.Helper()
	r := c.post(envelope(actionCreate, "", "", createBody))
	if r.status != 200 {
		c.t.Fatalf("Create: HTTP %d\n%s", r.status, r.body)
	}
	return r.root.FindText(soapxml.NSShell, "ShellId")
}

// command starts a command and returns its ID.
func (c *rawClient) command(shellID, command string, args ...string) string {
	c.t.Helper()
	r := c.post(envelope(actionCommand, shellID, "", commandBody(command, args...)))
	if r.status != 200 {
		c.t.Fatalf("Command: HTTP %d\n%s", r.status, r.body)
	}
	return r.root.FindText(soapxml.NSShell, "CommandId")
}

func (c *rawClient) receive(shellID, commandID string) rawResponse {
	c.t.Helper()
	return c.post(envelope(actionReceive, shellID, "", receiveBody(commandID)))
}

// streamItem is one rsp:Stream element of a ReceiveResponse.
type streamItem struct {
	name string
	end  bool
	data []byte
}

type receiveResult struct {
	items    []streamItem
	state    string
	exitCode string
	hasExit  bool
}

func parseReceive(t *testing.T, root *soapxml.Node) receiveResult {
	t.Helper()
	var res receiveResult
	rr := root.Child(soapxml.NSSOAP, "Body").Child(soapxml.NSShell, "ReceiveResponse")
	if rr == nil {
		t.Fatalf("no ReceiveResponse")
	}
	for _, c := range rr.Children {
		switch {
		case c.Is(soapxml.NSShell, "Stream"):
			name, _ := c.Attr("", "Name")
			end, _ := c.Attr("", "End")
			data, err := base64.StdEncoding.DecodeString(c.Text)
			if err != nil {
				t.Fatalf("stream data is not base64: %v", err)
			}
			res.items = append(res.items, streamItem{name: name, end: end == "true", data: data})
		case c.Is(soapxml.NSShell, "CommandState"):
			res.state, _ = c.Attr("", "State")
			if e := c.Child(soapxml.NSShell, "ExitCode"); e != nil {
				res.exitCode, res.hasExit = e.Text, true
			}
		default:
			t.Fatalf("unexpected element %s in ReceiveResponse", c.Name.Local)
		}
	}
	return res
}

// receiveAll receives until Done and returns stdout, stderr, the exit code
// and every response.
func (c *rawClient) receiveAll(shellID, commandID string) (string, string, string, []receiveResult) {
	c.t.Helper()
	var out, errb bytes.Buffer
	var all []receiveResult
	for i := 0; i < 1000; i++ {
		r := c.receive(shellID, commandID)
		if r.status == 500 && strings.Contains(r.body, "w:TimedOut") {
			continue
		}
		if r.status != 200 {
			c.t.Fatalf("Receive: HTTP %d\n%s", r.status, r.body)
		}
		res := parseReceive(c.t, r.root)
		all = append(all, res)
		for _, it := range res.items {
			if it.name == "stdout" {
				out.Write(it.data)
			} else {
				errb.Write(it.data)
			}
		}
		if res.state == stateDone {
			return out.String(), errb.String(), res.exitCode, all
		}
	}
	c.t.Fatal("command never completed")
	return "", "", "", nil
}

// faultOf extracts subcode, WSManFault code and message of a fault.
func faultOf(t *testing.T, r rawResponse) (subcode, code, message string) {
	t.Helper()
	if r.status != 500 {
		t.Fatalf("want HTTP 500 fault, got %d\n%s", r.status, r.body)
	}
	if a := r.root.FindText(soapxml.NSAddressing, "Action"); a != actionFault {
		t.Fatalf("fault Action %q", a)
	}
	sc := r.root.Find(soapxml.NSSOAP, "Subcode")
	if sc != nil {
		subcode = sc.Child(soapxml.NSSOAP, "Value").Text
	}
	wf := r.root.Find(soapxml.NSWSManFault, "WSManFault")
	if wf == nil {
		t.Fatalf("no WSManFault\n%s", r.body)
	}
	code, _ = wf.Attr("", "Code")
	msg := wf.Child(soapxml.NSWSManFault, "Message")
	if pf := msg.Child(soapxml.NSWSManFault, "ProviderFault"); pf != nil {
		return subcode, code, pf.Text
	}
	return subcode, code, msg.Text
}

var upperGUID = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// traceLog records exchanges for Options.Trace.
type traceLog struct {
	mu sync.Mutex
	ex []Exchange
}

func (l *traceLog) add(e Exchange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ex = append(l.ex, e)
}

func (l *traceLog) all() []Exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Exchange(nil), l.ex...)
}
