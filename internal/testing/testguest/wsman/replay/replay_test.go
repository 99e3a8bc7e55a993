package replay

import (
	"strings"
	"testing"
)

func loadNamed(t *testing.T, name string) *Capture {
	t.Helper()
	c, err := Named(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadAll(t *testing.T) {
	caps, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) < 12 {
		t.Fatalf("%d captures, want the 12 recorded ones", len(caps))
	}
	for _, c := range caps {
		if len(c.Messages) < 2 {
			t.Errorf("%s: %d messages", c.Name, len(c.Messages))
		}
	}
	if !loadNamed(t, "test_winrs_environment.yml").ActivityID() {
		t.Errorf("environment (Server 2016) has p:ActivityId")
	}
	if loadNamed(t, "test_winrs_standard.yml").ActivityID() {
		t.Errorf("standard (2008 R2) has no p:ActivityId")
	}
}

// The comparison must catch what matters: the recorded response compared
// with itself passes, every mutation below fails.
func TestComparisonIsStrict(t *testing.T) {
	standard := loadNamed(t, "test_winrs_standard.yml").Messages
	badCmd := loadNamed(t, "test_winrs_bad_cmd_id.yml").Messages
	receive := standard[2]
	fault := badCmd[2]

	diff := func(want, got, req string) []string {
		t.Helper()
		errs, err := Compare([]byte(want), []byte(got), []byte(req))
		if err != nil {
			t.Fatal(err)
		}
		return errs
	}
	for _, m := range append(append([]Message(nil), standard...), badCmd...) {
		if errs := diff(m.Response, m.Response, m.Request); len(errs) != 0 {
			t.Errorf("identical responses differ: %v", errs)
		}
	}
	mutations := []struct {
		name, base, old, new string
	}{
		{"exit code", receive.Response, "<rsp:ExitCode>0<", "<rsp:ExitCode>1<"},
		{"state", receive.Response, "CommandState/Done", "CommandState/Running"},
		{"missing End", receive.Response, `<rsp:Stream Name="stderr" CommandId="CF84C20A-0A35-43FA-AF78-0B4711DA5F30" End="true"></rsp:Stream>`, ""},
		{"stream text", receive.Response, "aGkNCg==", "aGkK"},
		{"stream swapped", receive.Response, `<rsp:Stream Name="stdout" CommandId="CF84C20A-0A35-43FA-AF78-0B4711DA5F30">aGkNCg==`, `<rsp:Stream Name="stderr" CommandId="CF84C20A-0A35-43FA-AF78-0B4711DA5F30">aGkNCg==`},
		{"action", receive.Response, "ReceiveResponse</a:Action>", "Receive</a:Action>"},
		{"relates to", receive.Response, "<a:RelatesTo>uuid:", "<a:RelatesTo>uuid:0"},
		{"fault trailing space", fault.Response, "for the resource. </s:Text>", "for the resource.</s:Text>"},
		{"fault code", fault.Response, `Code="2150858843"`, `Code="2150858842"`},
		{"fault subcode", fault.Response, "w:InvalidSelectors", "w:InvalidParameter"},
		{"fault detail", fault.Response, "<w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors</w:FaultDetail>", ""},
		{"xml:lang", fault.Response, `<s:Text xml:lang="en-US">`, `<s:Text>`},
		{"namespace", fault.Response, `<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"`, `<f:WSManFault xmlns:f="http://example.com/f"`},
		{"extra element", standard[0].Response, "<rsp:ShellInactivity>", "<rsp:Name>x</rsp:Name><rsp:ShellInactivity>"},
		{"idle timeout", standard[0].Response, "PT7200.000S", "PT7200S"},
		{"lowercase shell ID", standard[0].Response, "<rsp:ShellId>4283CBDC", "<rsp:ShellId>4283cbdc"},
		{"message ID", standard[0].Response, "uuid:2131383B-EFAE-46DE-92BB-343BE18B7EAD", "2131383B-EFAE-46DE-92BB-343BE18B7EAD"},
	}
	for _, m := range mutations {
		if !strings.Contains(m.base, m.old) {
			t.Fatalf("%s: %q not in the capture", m.name, m.old)
		}
		req := receive.Request
		if m.base == fault.Response {
			req = fault.Request
		} else if m.base == standard[0].Response {
			req = standard[0].Request
		}
		if errs := diff(m.base, strings.Replace(m.base, m.old, m.new, 1), req); len(errs) == 0 {
			t.Errorf("mutation %q not detected", m.name)
		}
	}
}
