// Package replay replays the exchanges recorded with real Windows
// (captures/, from the pypsrp test suite) against a
// WinRM server and compares each answer with the recorded one. It is
// test-support code for winbake's stand-in Windows guest: package wsman
// replays the captures against its test-only Host, package testguest
// against the complete stand-in (wsman server and simulated Windows).
//
// # Replay
//
// RunAll runs one parallel subtest per capture; the caller's start
// function brings up a fresh server for it, honouring what the capture
// needs (Capture.ActivityID: the server adds p:ActivityId; ReceiveGather;
// the account User with any password; time scaled by TimeUnit, see below)
// and returns its Target. Run replays one capture: every recorded request
// is sent, in order, over Basic authentication, with the IDs the server
// chose substituted for the recorded ones (except where the capture
// overrides an ID on purpose, as bad_cmd_id does), and the answer is
// compared with the recorded response.
//
// Time is scaled: one second of a capture lasts TimeUnit in the replay.
// OperationTimeout values are rewritten (PT20S becomes PT2.000S), and the
// server must run PowerShell's Start-Sleep at the same scale, so that a
// capture's sequence of Receive timeouts (operation_timeout: Start-Sleep 30
// under PT10S) comes out the same.
//
// # Comparison
//
// Responses are compared as element trees by namespace URI (never by
// prefix): HTTP status, Content-Type application/soap+xml;charset=UTF-8,
// Server Microsoft-HTTPAPI/2.0, element names and order, attributes, texts
// (fault texts with their trailing spaces), RelatesTo against the request's
// MessageID. Only what Windows chooses anew may differ: MessageID (still
// uuid: + uppercase GUID), ActivityId (uppercase GUID), ShellId and
// CommandId (the server's own uppercase GUIDs, consistently mapped),
// addresses, Owner and ClientIP (non-empty), Machine, ShellRunTime and
// ShellInactivity (P<d>DT<h>H<m>M<s>S). ReceiveResponses are compared by
// stream layout (runs of consecutive stdout or stderr data, End markers),
// decoded data per run, CommandState and ExitCode, so chunk boundaries
// may differ. The output of `set` is compared only on the lines the
// request controls (its environment, TEMP, TMP, USERPROFILE, USERNAME).
//
// Compare exposes the comparison of one response, for tests of its
// strictness.
//
// # The captures
//
// The recorded exchanges are this package's own data, embedded from
// captures/ (test_winrs_*.yml from the pypsrp test suite, recorded against
// Windows Server 2008 R2 and 2016; MIT, captures/LICENSE.pypsrp).
package replay

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

//go:embed captures/test_winrs_*.yml
var captureFiles embed.FS

const (
	// User is the account the captures were recorded with; their `set`
	// output names it (USERNAME, USERPROFILE, TEMP).
	User = "vagrant"
	// TimeUnit is what one second of a capture lasts in the replay, for
	// OperationTimeout and Start-Sleep alike.
	TimeUnit = 100 * time.Millisecond
	// ReceiveGather is the Receive gather time a replayed server should
	// use: long enough that output Windows sent in one response (e.g.
	// Write-Host's text and its "\n", written separately) is gathered into
	// one response here too.
	ReceiveGather = 300 * time.Millisecond
)

// Message is one recorded exchange.
type Message struct {
	Request, Response string
	// Status is the recorded HTTP status (200 unless the capture has a
	// transport_error).
	Status int
	// OverrideIDs are recorded IDs the request uses on purpose (they are
	// not replaced by the server's IDs).
	OverrideIDs map[string]bool
}

// Capture is one recorded test: a sequence of exchanges.
type Capture struct {
	// Name is the file name without .yml, e.g. "test_winrs_standard".
	Name     string
	Messages []Message
}

// ActivityID reports whether the recorded responses carry p:ActivityId
// (Windows Server 2012 R2 and later): the replayed server must add it.
func (c *Capture) ActivityID() bool {
	for _, m := range c.Messages {
		if strings.Contains(m.Response, "ActivityId>") {
			return true
		}
	}
	return false
}

// Target is the server a capture is replayed against.
type Target struct {
	// Addr is host:port of the HTTP listener.
	Addr string
	// User and Password authenticate with Basic; User should be User.
	User, Password string
}

// All loads every embedded capture, sorted by name.
func All() ([]*Capture, error) {
	files, err := fs.Glob(captureFiles, "captures/test_winrs_*.yml")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no captures/test_winrs_*.yml embedded")
	}
	sort.Strings(files)
	var out []*Capture
	for _, f := range files {
		c, err := Named(path.Base(f))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Named loads one embedded capture by file name ("test_winrs_standard.yml").
func Named(name string) (*Capture, error) {
	data, err := captureFiles.ReadFile("captures/" + name)
	if err != nil {
		return nil, err
	}
	return Parse(name, data)
}

// Parse reads one capture file's content; name is its file name.
func Parse(name string, data []byte) (*Capture, error) {
	v, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	top, _ := v.(map[string]any)
	items, _ := top["messages"].([]any)
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no messages", name)
	}
	c := &Capture{Name: strings.TrimSuffix(name, ".yml")}
	for i, it := range items {
		m, _ := it.(map[string]any)
		req, _ := m["request"].(string)
		resp, _ := m["response"].(string)
		if req == "" || resp == "" {
			return nil, fmt.Errorf("%s: message %d lacks request or response", name, i)
		}
		cm := Message{Request: req, Response: resp, Status: 200, OverrideIDs: map[string]bool{}}
		if te, ok := m["transport_error"].(map[string]any); ok {
			code, _ := te["code"].(string)
			cm.Status, err = strconv.Atoi(code)
			if err != nil {
				return nil, fmt.Errorf("%s: message %d: bad transport_error code %q", name, i, code)
			}
		}
		if ov, ok := m["overrides"].([]any); ok {
			for _, o := range ov {
				om, _ := o.(map[string]any)
				attrs, _ := om["attributes"].(map[string]any)
				for _, a := range attrs {
					if s, ok := a.(string); ok {
						cm.OverrideIDs[s] = true
					}
				}
			}
		}
		c.Messages = append(c.Messages, cm)
	}
	return c, nil
}

// RunAll replays every capture in a parallel subtest named after it;
// start brings up the server for one capture.
func RunAll(t *testing.T, start func(t *testing.T, c *Capture) Target) {
	t.Helper()
	caps, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caps {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			Run(t, c, start(t, c))
		})
	}
}

var timeoutRE = regexp.MustCompile(`(<[A-Za-z0-9]+:OperationTimeout>)PT(\d+)S(</)`)

// state tracks the IDs the server returned for the recorded ones and the
// command lines by CommandId.
type state struct {
	ids      map[string]string // recorded → actual
	commands map[string]string // actual CommandId → command line
	lastLine string
}

func newState() *state {
	return &state{ids: map[string]string{}, commands: map[string]string{}}
}

// Run replays c against tgt, failing t on any difference.
func Run(t testing.TB, c *Capture, tgt Target) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	st := newState()
	for i, m := range c.Messages {
		req := m.Request
		for rec, act := range st.ids {
			if !m.OverrideIDs[rec] {
				req = strings.ReplaceAll(req, rec, act)
			}
		}
		req = timeoutRE.ReplaceAllStringFunc(req, func(x string) string {
			sm := timeoutRE.FindStringSubmatch(x)
			n, _ := strconv.Atoi(sm[2])
			d := time.Duration(n) * TimeUnit
			return sm[1] + fmt.Sprintf("PT%d.%03dS", d/time.Second, d%time.Second/time.Millisecond) + sm[3]
		})
		reqRoot, err := soapxml.Parse([]byte(req))
		if err != nil {
			t.Fatalf("%s message %d: recorded request is not XML: %v", c.Name, i, err)
		}
		if cl := reqRoot.Find(soapxml.NSShell, "CommandLine"); cl != nil {
			var parts []string
			for _, ch := range cl.Children {
				parts = append(parts, ch.Text)
			}
			st.lastLine = strings.Join(parts, " ")
		}
		hr, _ := http.NewRequest(http.MethodPost, "http://"+tgt.Addr+"/wsman", strings.NewReader(req))
		hr.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		hr.SetBasicAuth(tgt.User, tgt.Password)
		resp, err := client.Do(hr)
		if err != nil {
			t.Fatalf("%s message %d: %v", c.Name, i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != m.Status {
			t.Fatalf("%s message %d (%s): HTTP %d, recorded %d\n%s", c.Name, i, reqRoot.FindText(soapxml.NSAddressing, "Action"), resp.StatusCode, m.Status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
			t.Errorf("%s message %d: Content-Type %q", c.Name, i, ct)
		}
		if sv := resp.Header.Get("Server"); sv != "Microsoft-HTTPAPI/2.0" {
			t.Errorf("%s message %d: Server %q", c.Name, i, sv)
		}
		errs, err := compareMessage(st, i, []byte(m.Response), body, reqRoot)
		if err != nil {
			t.Fatalf("%s message %d: %v\n%s", c.Name, i, err, body)
		}
		for _, e := range errs {
			t.Errorf("%s %s", c.Name, e)
		}
	}
}

// Compare compares a response with the recorded one for the request, as
// Run does, with no IDs learned yet (a server ID must then be an
// uppercase GUID or the recorded ID itself). It returns the differences;
// the error reports unparseable XML.
func Compare(recorded, got, request []byte) ([]string, error) {
	req, err := soapxml.Parse(request)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return compareMessage(newState(), 0, recorded, got, req)
}

// compareMessage compares one response and learns the IDs the server chose.
func compareMessage(st *state, msg int, recorded, body []byte, req *soapxml.Node) ([]string, error) {
	got, err := soapxml.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("response is not XML: %w", err)
	}
	want, err := soapxml.Parse(recorded)
	if err != nil {
		return nil, fmt.Errorf("recorded response is not XML: %w", err)
	}
	c := &comparer{msg: msg, st: st}
	if rel := got.FindText(soapxml.NSAddressing, "RelatesTo"); rel != req.FindText(soapxml.NSAddressing, "MessageID") {
		c.errorf("RelatesTo", "%q, request MessageID %q", rel, req.FindText(soapxml.NSAddressing, "MessageID"))
	}
	// Learn the IDs the server chose.
	for _, name := range []string{"ShellId", "CommandId"} {
		if w, g := want.FindText(soapxml.NSShell, name), got.FindText(soapxml.NSShell, name); w != "" && g != "" {
			st.ids[w] = g
			if name == "CommandId" {
				st.commands[g] = st.lastLine
			}
		}
	}
	if w, g := want.Find(soapxml.NSWSMan, "Selector"), got.Find(soapxml.NSWSMan, "Selector"); w != nil && g != nil {
		st.ids[w.Text] = g.Text
	}
	if rr := want.Find(soapxml.NSShell, "ReceiveResponse"); rr != nil {
		c.compareReceive(rr, got.Find(soapxml.NSShell, "ReceiveResponse"), req)
		c.compare(stripReceive(want), stripReceive(got), "")
	} else {
		c.compare(want, got, "")
	}
	return c.errs, nil
}

// stripReceive returns a copy without the ReceiveResponse content (compared
// separately, chunk boundaries being arbitrary).
func stripReceive(n *soapxml.Node) *soapxml.Node {
	cp := *n
	cp.Children = nil
	for _, c := range n.Children {
		if c.Is(soapxml.NSShell, "ReceiveResponse") {
			e := *c
			e.Children = nil
			cp.Children = append(cp.Children, &e)
			continue
		}
		cp.Children = append(cp.Children, stripReceive(c))
	}
	return &cp
}

type comparer struct {
	msg  int
	st   *state
	errs []string
}

func (c *comparer) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf("message %d, %s: %s", c.msg, path, fmt.Sprintf(format, args...)))
}

var (
	upperGUID  = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
	uuidRE     = regexp.MustCompile(`^uuid:[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
	dayTimeRE  = regexp.MustCompile(`^P\d+DT\d+H\d+M\d+S$`)
	activityRE = upperGUID
)

// expectID checks an ID the server chose against the recorded one.
func (c *comparer) expectID(path, want, got string) {
	if mapped, ok := c.st.ids[want]; ok {
		if got != mapped {
			c.errorf(path, "ID %q, want %q (recorded %q)", got, mapped, want)
		}
		return
	}
	// An ID the server never returned (bad_cmd_id's made-up CommandId) is
	// echoed verbatim.
	if got != want && !upperGUID.MatchString(got) {
		c.errorf(path, "ID %q is not an uppercase GUID (recorded %q)", got, want)
	}
}

// compare checks element names (by namespace), attributes, order and
// text, allowing only IDs, addresses, owner and durations to differ.
func (c *comparer) compare(want, got *soapxml.Node, path string) {
	if got == nil {
		c.errorf(path, "missing element %s", qname(want.Name))
		return
	}
	path += "/" + qname(want.Name)
	if want.Name != got.Name {
		c.errorf(path, "element %s, recorded %s", qname(got.Name), qname(want.Name))
		return
	}
	wa, ga := attrMap(want), attrMap(got)
	for k, wv := range wa {
		gv, ok := ga[k]
		switch {
		case !ok:
			c.errorf(path, "missing attribute %s", k)
		case k == "Machine":
			if gv == "" {
				c.errorf(path, "empty Machine")
			}
		case k == "CommandId":
			c.expectID(path+"@CommandId", wv, gv)
		case gv != wv:
			c.errorf(path, "attribute %s=%q, recorded %q", k, gv, wv)
		}
	}
	for k := range ga {
		if _, ok := wa[k]; !ok {
			c.errorf(path, "extra attribute %s=%q", k, ga[k])
		}
	}
	wt, gt := want.Text, got.Text
	if len(want.Children) > 0 || len(got.Children) > 0 {
		wt, gt = strings.TrimSpace(wt), strings.TrimSpace(gt)
	}
	switch qname(want.Name) {
	case "a:MessageID":
		if !uuidRE.MatchString(gt) {
			c.errorf(path, "MessageID %q is not uuid: + uppercase GUID", gt)
		}
	case "a:RelatesTo":
		// Checked against the request.
	case "p:ActivityId":
		if !activityRE.MatchString(gt) {
			c.errorf(path, "ActivityId %q", gt)
		}
	case "rsp:ShellId", "w:Selector", "rsp:CommandId":
		c.expectID(path, wt, gt)
	case "a:Address", "rsp:Owner", "rsp:ClientIP":
		if gt == "" {
			c.errorf(path, "empty")
		}
	case "rsp:ShellRunTime", "rsp:ShellInactivity":
		if !dayTimeRE.MatchString(gt) {
			c.errorf(path, "duration %q", gt)
		}
	default:
		if wt != gt {
			c.errorf(path, "text %q, recorded %q", gt, wt)
		}
	}
	var wk, gk []string
	for _, ch := range want.Children {
		wk = append(wk, qname(ch.Name))
	}
	for _, ch := range got.Children {
		gk = append(gk, qname(ch.Name))
	}
	if strings.Join(wk, " ") != strings.Join(gk, " ") {
		c.errorf(path, "children [%s], recorded [%s]", strings.Join(gk, " "), strings.Join(wk, " "))
		return
	}
	for i := range want.Children {
		c.compare(want.Children[i], got.Children[i], path)
	}
}

// run is a stretch of consecutive data of one stream, or an End marker.
type run struct {
	name string
	end  bool
	data []byte
}

func (c *comparer) runsOf(rr *soapxml.Node) ([]run, []*soapxml.Node) {
	var runs []run
	var rest []*soapxml.Node
	for _, ch := range rr.Children {
		if !ch.Is(soapxml.NSShell, "Stream") {
			rest = append(rest, ch)
			continue
		}
		name, _ := ch.Attr("", "Name")
		end, _ := ch.Attr("", "End")
		data, err := base64.StdEncoding.DecodeString(ch.Text)
		if err != nil {
			c.errorf("ReceiveResponse", "stream data %q is not base64", ch.Text)
		}
		if end == "true" {
			if len(data) != 0 {
				c.errorf("ReceiveResponse", "End marker with data")
			}
			runs = append(runs, run{name: name, end: true})
			continue
		}
		if n := len(runs); n > 0 && !runs[n-1].end && runs[n-1].name == name {
			runs[n-1].data = append(runs[n-1].data, data...)
			continue
		}
		runs = append(runs, run{name: name, data: data})
	}
	return runs, rest
}

// compareReceive checks the stream layout (runs of each stream in order,
// End markers, CommandState, ExitCode) and the decoded text.
func (c *comparer) compareReceive(want, got, req *soapxml.Node) {
	if got == nil {
		c.errorf("ReceiveResponse", "missing")
		return
	}
	wr, wrest := c.runsOf(want)
	gr, grest := c.runsOf(got)
	layout := func(rs []run) string {
		var p []string
		for _, r := range rs {
			if r.end {
				p = append(p, r.name+"(End)")
			} else {
				p = append(p, r.name)
			}
		}
		return strings.Join(p, " ")
	}
	if layout(wr) != layout(gr) {
		c.errorf("ReceiveResponse", "stream layout [%s], recorded [%s]", layout(gr), layout(wr))
		return
	}
	id, _ := req.Find(soapxml.NSShell, "DesiredStream").Attr("", "CommandId")
	line := c.st.commands[id]
	for i := range wr {
		if wr[i].end {
			continue
		}
		if strings.HasSuffix(line, " set") {
			// `set` prints the machine's environment: only the lines the
			// request controls must match.
			gotLines := map[string]bool{}
			for _, l := range strings.SplitAfter(string(gr[i].data), "\r\n") {
				gotLines[l] = true
			}
			for _, l := range strings.SplitAfter(string(wr[i].data), "\r\n") {
				name, _, _ := strings.Cut(l, "=")
				switch {
				case strings.HasPrefix(l, "env1="), strings.HasPrefix(l, "1234="), strings.HasPrefix(l, "_-()"),
					name == "TEMP", name == "TMP", name == "USERPROFILE", name == "USERNAME":
					if !gotLines[l] {
						c.errorf("ReceiveResponse", "set output lacks recorded line %q", l)
					}
				}
			}
			continue
		}
		if !bytes.Equal(wr[i].data, gr[i].data) {
			c.errorf("ReceiveResponse", "%s data %q, recorded %q", wr[i].name, gr[i].data, wr[i].data)
		}
	}
	if len(wrest) != len(grest) {
		c.errorf("ReceiveResponse", "%d non-stream elements, recorded %d", len(grest), len(wrest))
		return
	}
	for i := range wrest {
		c.compare(wrest[i], grest[i], "ReceiveResponse")
	}
}
