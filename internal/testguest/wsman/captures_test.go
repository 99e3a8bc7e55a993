package wsman

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// referenceDir finds shared/reference: $WINBAKE_REFERENCE_DIR, else the
// first ancestor of the module root holding shared/reference/winrm-captures
// (CI clones the repository with shared/ beside the clone).
func captureDir(t *testing.T) string {
	t.Helper()
	if env := os.Getenv("WINBAKE_REFERENCE_DIR"); env != "" {
		for _, d := range []string{filepath.Join(env, "winrm-captures"), env} {
			if m, _ := filepath.Glob(filepath.Join(d, "test_winrs_*.yml")); len(m) > 0 {
				return d
			}
		}
		t.Fatalf("WINBAKE_REFERENCE_DIR=%s holds no winrm-captures/test_winrs_*.yml", env)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatalf("no go.mod above %s", wd)
		}
		root = parent
	}
	for d := root; ; {
		c := filepath.Join(d, "shared", "reference", "winrm-captures")
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	t.Fatalf("WinRM captures not found: no shared/reference/winrm-captures in %s or any parent; clone the shared reference beside the repository or set WINBAKE_REFERENCE_DIR", root)
	return ""
}

// ---- a reader for the captures' small YAML subset ----
// Block mappings and sequences, plain and quoted scalars on one line.

type yamlLine struct {
	indent int
	text   string
}

func parseYAML(data []byte) (any, error) {
	var lines []yamlLine
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " "))
		lines = append(lines, yamlLine{ind, strings.TrimSpace(l)})
	}
	v, rest, err := yamlBlock(lines, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("unexpected YAML line %q", rest[0].text)
	}
	return v, nil
}

func yamlBlock(lines []yamlLine, indent int) (any, []yamlLine, error) {
	if len(lines) == 0 {
		return nil, lines, nil
	}
	if strings.HasPrefix(lines[0].text, "- ") || lines[0].text == "-" {
		var seq []any
		for len(lines) > 0 && lines[0].indent == indent && strings.HasPrefix(lines[0].text, "-") {
			item := strings.TrimSpace(strings.TrimPrefix(lines[0].text, "-"))
			// The item's content is a block at the column after "- ".
			inner := indent + (len(lines[0].text) - len(strings.TrimLeft(strings.TrimPrefix(lines[0].text, "-"), " "))) + 0
			sub := append([]yamlLine{{inner, item}}, lines[1:]...)
			v, rest, err := yamlBlock(sub, inner)
			if err != nil {
				return nil, nil, err
			}
			seq = append(seq, v)
			lines = rest
		}
		return seq, lines, nil
	}
	m := map[string]any{}
	for len(lines) > 0 && lines[0].indent == indent {
		key, val, ok := strings.Cut(lines[0].text, ":")
		if !ok {
			return nil, nil, fmt.Errorf("expected a mapping key in %q", lines[0].text)
		}
		val = strings.TrimSpace(val)
		lines = lines[1:]
		if val == "" {
			if len(lines) > 0 && (lines[0].indent > indent || (lines[0].indent == indent && strings.HasPrefix(lines[0].text, "- "))) {
				v, rest, err := yamlBlock(lines, lines[0].indent)
				if err != nil {
					return nil, nil, err
				}
				m[key] = v
				lines = rest
			} else {
				m[key] = nil
			}
			continue
		}
		s, err := yamlScalar(val)
		if err != nil {
			return nil, nil, err
		}
		m[key] = s
	}
	return m, lines, nil
}

func yamlScalar(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "'"):
		if !strings.HasSuffix(s, "'") || len(s) < 2 {
			return "", fmt.Errorf("unterminated single-quoted scalar")
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, `"`):
		return strconv.Unquote(s)
	}
	return s, nil
}

// ---- the replay ----

type captureMessage struct {
	request, response string
	status            int
	overrideIDs       map[string]bool // recorded IDs the request uses on purpose
}

func loadCapture(t *testing.T, path string) []captureMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseYAML(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	top, _ := v.(map[string]any)
	items, _ := top["messages"].([]any)
	if len(items) == 0 {
		t.Fatalf("%s: no messages", path)
	}
	var out []captureMessage
	for i, it := range items {
		m, _ := it.(map[string]any)
		req, _ := m["request"].(string)
		resp, _ := m["response"].(string)
		if req == "" || resp == "" {
			t.Fatalf("%s: message %d lacks request or response", path, i)
		}
		cm := captureMessage{request: req, response: resp, status: 200, overrideIDs: map[string]bool{}}
		if te, ok := m["transport_error"].(map[string]any); ok {
			code, _ := te["code"].(string)
			cm.status, err = strconv.Atoi(code)
			if err != nil {
				t.Fatalf("%s: message %d: bad transport_error code %q", path, i, code)
			}
		}
		if ov, ok := m["overrides"].([]any); ok {
			for _, o := range ov {
				om, _ := o.(map[string]any)
				attrs, _ := om["attributes"].(map[string]any)
				for _, a := range attrs {
					if s, ok := a.(string); ok {
						cm.overrideIDs[s] = true
					}
				}
			}
		}
		out = append(out, cm)
	}
	return out
}

// timeUnit is what one second of a capture lasts in the replay
// (OperationTimeout and Start-Sleep alike).
const timeUnit = 100 * time.Millisecond

var timeoutRE = regexp.MustCompile(`(<[A-Za-z0-9]+:OperationTimeout>)PT(\d+)S(</)`)

func TestCaptureReplay(t *testing.T) {
	dir := captureDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "test_winrs_*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test_winrs_*.yml in %s", dir)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yml"), func(t *testing.T) {
			t.Parallel()
			replayCapture(t, f)
		})
	}
}

// replayState tracks the IDs the server returned for the recorded ones and
// the command lines by recorded CommandId.
type replayState struct {
	ids      map[string]string // recorded → actual
	commands map[string]string // actual CommandId → command line
	lastLine string
}

func replayCapture(t *testing.T, path string) {
	msgs := loadCapture(t, path)
	activity := false
	for _, m := range msgs {
		if strings.Contains(m.response, "ActivityId>") {
			activity = true
		}
	}
	s, h := newTestServer(t, Options{ActivityID: activity, ReceiveGather: 300 * time.Millisecond})
	h.sleepUnit = timeUnit
	client := &http.Client{Timeout: 30 * time.Second}
	st := &replayState{ids: map[string]string{}, commands: map[string]string{}}
	for i, m := range msgs {
		req := m.request
		for rec, act := range st.ids {
			if !m.overrideIDs[rec] {
				req = strings.ReplaceAll(req, rec, act)
			}
		}
		req = timeoutRE.ReplaceAllStringFunc(req, func(x string) string {
			sm := timeoutRE.FindStringSubmatch(x)
			n, _ := strconv.Atoi(sm[2])
			d := time.Duration(n) * timeUnit
			return sm[1] + fmt.Sprintf("PT%d.%03dS", d/time.Second, d%time.Second/time.Millisecond) + sm[3]
		})
		reqRoot, err := parseXML([]byte(req))
		if err != nil {
			t.Fatalf("message %d: recorded request is not XML: %v", i, err)
		}
		if cl := find(reqRoot, nsShell, "CommandLine"); cl != nil {
			var parts []string
			for _, c := range cl.children {
				parts = append(parts, c.text)
			}
			st.lastLine = strings.Join(parts, " ")
		}
		hr, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/wsman", strings.NewReader(req))
		hr.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		hr.SetBasicAuth(testUser, testPassword)
		resp, err := client.Do(hr)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != m.status {
			t.Fatalf("message %d (%s): HTTP %d, recorded %d\n%s", i, findText(reqRoot, nsAddr, "Action"), resp.StatusCode, m.status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
			t.Errorf("message %d: Content-Type %q", i, ct)
		}
		if sv := resp.Header.Get("Server"); sv != "Microsoft-HTTPAPI/2.0" {
			t.Errorf("message %d: Server %q", i, sv)
		}
		got, err := parseXML(body)
		if err != nil {
			t.Fatalf("message %d: response is not XML: %v\n%s", i, err, body)
		}
		want, err := parseXML([]byte(m.response))
		if err != nil {
			t.Fatalf("message %d: recorded response is not XML: %v", i, err)
		}
		if rel := findText(got, nsAddr, "RelatesTo"); rel != findText(reqRoot, nsAddr, "MessageID") {
			t.Errorf("message %d: RelatesTo %q, request MessageID %q", i, rel, findText(reqRoot, nsAddr, "MessageID"))
		}
		// Learn the IDs the server chose.
		for _, pair := range [][2]string{{nsShell, "ShellId"}, {nsShell, "CommandId"}} {
			if w, g := findText(want, pair[0], pair[1]), findText(got, pair[0], pair[1]); w != "" && g != "" {
				st.ids[w] = g
				if pair[1] == "CommandId" {
					st.commands[g] = st.lastLine
				}
			}
		}
		if w, g := find(want, nsWSMan, "Selector"), find(got, nsWSMan, "Selector"); w != nil && g != nil {
			st.ids[w.text] = g.text
		}
		c := &comparer{t: t, msg: i, st: st}
		if rr := find(want, nsShell, "ReceiveResponse"); rr != nil {
			c.compareReceive(rr, find(got, nsShell, "ReceiveResponse"), reqRoot)
			c.compare(stripReceive(want), stripReceive(got), "")
		} else {
			c.compare(want, got, "")
		}
	}
}

// stripReceive returns a copy without the ReceiveResponse content (compared
// separately, chunk boundaries being arbitrary).
func stripReceive(n *node) *node {
	cp := *n
	cp.children = nil
	for _, c := range n.children {
		if c.is(nsShell, "ReceiveResponse") {
			e := *c
			e.children = nil
			cp.children = append(cp.children, &e)
			continue
		}
		cp.children = append(cp.children, stripReceive(c))
	}
	return &cp
}

type comparer struct {
	t   *testing.T
	msg int
	st  *replayState
	// errs, when set, collects differences instead of failing the test.
	errs *[]string
}

func (c *comparer) errorf(path, format string, args ...any) {
	c.t.Helper()
	m := fmt.Sprintf("message %d, %s: %s", c.msg, path, fmt.Sprintf(format, args...))
	if c.errs != nil {
		*c.errs = append(*c.errs, m)
		return
	}
	c.t.Error(m)
}

func qname(n xml.Name) string {
	p := map[string]string{nsSOAP: "s", nsAddr: "a", nsWSMan: "w", nsMSWSMan: "p", nsShell: "rsp", nsTransfer: "x", nsWSManFlt: "f", nsXML: "xml", "": ""}[n.Space]
	if p == "" && n.Space != "" {
		p = "{" + n.Space + "}"
	}
	if p == "" {
		return n.Local
	}
	return p + ":" + n.Local
}

func attrMap(n *node) map[string]string {
	m := map[string]string{}
	for _, a := range n.attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		m[qname(a.Name)] = a.Value
	}
	return m
}

var (
	uuidRE     = regexp.MustCompile(`^uuid:[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
	dayTimeRE  = regexp.MustCompile(`^P\d+DT\d+H\d+M\d+S$`)
	activityRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
)

// expectID checks an ID the server chose against the recorded one.
func (c *comparer) expectID(path, want, got string) {
	c.t.Helper()
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
func (c *comparer) compare(want, got *node, path string) {
	c.t.Helper()
	if got == nil {
		c.errorf(path, "missing element %s", qname(want.name))
		return
	}
	path += "/" + qname(want.name)
	if want.name != got.name {
		c.errorf(path, "element %s, recorded %s", qname(got.name), qname(want.name))
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
	wt, gt := want.text, got.text
	if len(want.children) > 0 || len(got.children) > 0 {
		wt, gt = strings.TrimSpace(wt), strings.TrimSpace(gt)
	}
	switch qname(want.name) {
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
	for _, ch := range want.children {
		wk = append(wk, qname(ch.name))
	}
	for _, ch := range got.children {
		gk = append(gk, qname(ch.name))
	}
	if strings.Join(wk, " ") != strings.Join(gk, " ") {
		c.errorf(path, "children [%s], recorded [%s]", strings.Join(gk, " "), strings.Join(wk, " "))
		return
	}
	for i := range want.children {
		c.compare(want.children[i], got.children[i], path)
	}
}

// run is a stretch of consecutive data of one stream, or an End marker.
type run struct {
	name string
	end  bool
	data []byte
}

func runsOf(t *testing.T, rr *node) ([]run, []*node) {
	var runs []run
	var rest []*node
	for _, ch := range rr.children {
		if !ch.is(nsShell, "Stream") {
			rest = append(rest, ch)
			continue
		}
		name, _ := ch.attr("", "Name")
		end, _ := ch.attr("", "End")
		data, err := base64.StdEncoding.DecodeString(ch.text)
		if err != nil {
			t.Errorf("stream data %q is not base64", ch.text)
		}
		if end == "true" {
			if len(data) != 0 {
				t.Errorf("End marker with data")
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
func (c *comparer) compareReceive(want, got, req *node) {
	c.t.Helper()
	if got == nil {
		c.errorf("ReceiveResponse", "missing")
		return
	}
	wr, wrest := runsOf(c.t, want)
	gr, grest := runsOf(c.t, got)
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
	id, _ := find(req, nsShell, "DesiredStream").attr("", "CommandId")
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
