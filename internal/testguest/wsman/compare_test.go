package wsman

import (
	"path/filepath"
	"strings"
	"testing"
)

// The replay's comparison must catch what matters: the recorded response
// compared with itself passes, every mutation below fails.
func TestReplayComparisonIsStrict(t *testing.T) {
	dir := captureDir(t)
	byFile := func(name string) []captureMessage { return loadCapture(t, filepath.Join(dir, name)) }
	standard := byFile("test_winrs_standard.yml")
	badCmd := byFile("test_winrs_bad_cmd_id.yml")
	receive := standard[2]
	fault := badCmd[2]

	diff := func(want, got string, req string) []string {
		t.Helper()
		w, err := parseXML([]byte(want))
		if err != nil {
			t.Fatal(err)
		}
		g, err := parseXML([]byte(got))
		if err != nil {
			t.Fatalf("mutated response is not XML: %v", err)
		}
		r, err := parseXML([]byte(req))
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		c := &comparer{t: t, st: &replayState{ids: map[string]string{}, commands: map[string]string{}}, errs: &errs}
		if rr := find(w, nsShell, "ReceiveResponse"); rr != nil {
			c.compareReceive(rr, find(g, nsShell, "ReceiveResponse"), r)
			c.compare(stripReceive(w), stripReceive(g), "")
		} else {
			c.compare(w, g, "")
		}
		return errs
	}
	for _, m := range append(append([]captureMessage(nil), standard...), badCmd...) {
		if errs := diff(m.response, m.response, m.request); len(errs) != 0 {
			t.Errorf("identical responses differ: %v", errs)
		}
	}
	mutations := []struct {
		name, base, old, new string
	}{
		{"exit code", receive.response, "<rsp:ExitCode>0<", "<rsp:ExitCode>1<"},
		{"state", receive.response, "CommandState/Done", "CommandState/Running"},
		{"missing End", receive.response, `<rsp:Stream Name="stderr" CommandId="CF84C20A-0A35-43FA-AF78-0B4711DA5F30" End="true"></rsp:Stream>`, ""},
		{"stream text", receive.response, "aGkNCg==", "aGkK"},
		{"stream swapped", receive.response, `<rsp:Stream Name="stdout" CommandId="CF84C20A-0A35-43FA-AF78-0B4711DA5F30">aGkNCg==`, `<rsp:Stream Name="stderr" CommandId="CF84C20A-0A35-43FA-AF78-0B4711DA5F30">aGkNCg==`},
		{"action", receive.response, "ReceiveResponse</a:Action>", "Receive</a:Action>"},
		{"fault trailing space", fault.response, "for the resource. </s:Text>", "for the resource.</s:Text>"},
		{"fault code", fault.response, `Code="2150858843"`, `Code="2150858842"`},
		{"fault subcode", fault.response, "w:InvalidSelectors", "w:InvalidParameter"},
		{"fault detail", fault.response, "<w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors</w:FaultDetail>", ""},
		{"xml:lang", fault.response, `<s:Text xml:lang="en-US">`, `<s:Text>`},
		{"namespace", fault.response, `<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"`, `<f:WSManFault xmlns:f="http://example.com/f"`},
		{"extra element", standard[0].response, "<rsp:ShellInactivity>", "<rsp:Name>x</rsp:Name><rsp:ShellInactivity>"},
		{"idle timeout", standard[0].response, "PT7200.000S", "PT7200S"},
		{"lowercase shell ID", standard[0].response, "<rsp:ShellId>4283CBDC", "<rsp:ShellId>4283cbdc"},
		{"message ID", standard[0].response, "uuid:2131383B-EFAE-46DE-92BB-343BE18B7EAD", "2131383B-EFAE-46DE-92BB-343BE18B7EAD"},
	}
	for _, m := range mutations {
		if !strings.Contains(m.base, m.old) {
			t.Fatalf("%s: %q not in the capture", m.name, m.old)
		}
		req := receive.request
		if m.base == fault.response {
			req = fault.request
		} else if m.base == standard[0].response {
			req = standard[0].request
		}
		if errs := diff(m.base, strings.Replace(m.base, m.old, m.new, 1), req); len(errs) == 0 {
			t.Errorf("mutation %q not detected", m.name)
		}
	}
}
