package wsman

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

func TestResponseHeadersAsWindows(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	const msgID = "uuid:0f0e0d0c-0b0a-4908-8706-050403020100"
	req := regexp.MustCompile(`<a:MessageID>[^<]*</a:MessageID>`).ReplaceAllString(envelope(actionCreate, "", "", createBody), "<a:MessageID>"+msgID+"</a:MessageID>")
	r := c.post(req)
	if r.status != 200 {
		t.Fatalf("HTTP %d\n%s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if sv := r.header.Get("Server"); sv != "Microsoft-HTTPAPI/2.0" {
		t.Errorf("Server %q", sv)
	}
	if lang, _ := r.root.Attr(soapxml.NSXML, "lang"); lang != "en-US" {
		t.Errorf("Envelope xml:lang %q", lang)
	}
	hdr := r.root.Child(soapxml.NSSOAP, "Header")
	var names []string
	for _, h := range hdr.Children {
		names = append(names, h.Name.Local)
	}
	if strings.Join(names, " ") != "Action MessageID To RelatesTo" {
		t.Errorf("header elements %v", names)
	}
	if a := hdr.Child(soapxml.NSAddressing, "Action").Text; a != actionCreate+"Response" {
		t.Errorf("Action %q", a)
	}
	if id := hdr.Child(soapxml.NSAddressing, "MessageID").Text; !regexp.MustCompile(`^uuid:[0-9A-F-]{36}$`).MatchString(id) || id == msgID {
		t.Errorf("MessageID %q", id)
	}
	if rel := hdr.Child(soapxml.NSAddressing, "RelatesTo").Text; rel != msgID {
		t.Errorf("RelatesTo %q, want the request's %q verbatim", rel, msgID)
	}
	if to := hdr.Child(soapxml.NSAddressing, "To").Text; to != anonymous {
		t.Errorf("To %q", to)
	}
	sel := r.root.Find(soapxml.NSWSMan, "Selector")
	shellID := r.root.FindText(soapxml.NSShell, "ShellId")
	if sel == nil || sel.Text != shellID || !upperGUID.MatchString(shellID) {
		t.Errorf("ShellId forms: selector %v, rsp:ShellId %q", sel, shellID)
	}
	if owner := r.root.FindText(soapxml.NSShell, "Owner"); owner != testUser {
		t.Errorf("Owner %q", owner)
	}
	if ip := r.root.FindText(soapxml.NSShell, "ClientIP"); ip != "127.0.0.1" {
		t.Errorf("ClientIP %q", ip)
	}
	if a := r.root.FindText(soapxml.NSAddressing, "Address"); a != "http://127.0.0.1/wsman" {
		t.Errorf("Address %q, want the request's To", a)
	}
	// ActivityId on request, as 2012 R2 and later add it.
	s2, _ := newTestServer(t, Options{ActivityID: true})
	r = newRawClient(t, s2).post(envelope(actionCreate, "", "", createBody))
	if act := r.root.FindText(soapxml.NSMSWSMan, "ActivityId"); !upperGUID.MatchString(act) {
		t.Errorf("ActivityId %q", act)
	}
}

// Any prefixes, default namespaces and CDATA: parsing is by namespace URI.
func TestParsesByNamespaceNotPrefix(t *testing.T) {
	t.Parallel()
	s, h := newTestServer(t, Options{})
	c := newRawClient(t, s)
	wrap := func(action, shellID, options, body string) string {
		sel := ""
		if shellID != "" {
			sel = `<q:SelectorSet xmlns:q="` + soapxml.NSWSMan + `"><q:Selector Name="ShellId">` + shellID + `</q:Selector></q:SelectorSet>`
		}
		return `<?xml version="1.0" encoding="utf-8"?>` +
			`<Envelope xmlns="` + soapxml.NSSOAP + `" xmlns:addr="` + soapxml.NSAddressing + `" xmlns:man="` + soapxml.NSWSMan + `">` +
			`<Header><addr:Action>` + action + `</addr:Action><addr:MessageID>uuid:` + newGUID() + `</addr:MessageID>` +
			`<man:ResourceURI><![CDATA[` + cmdResource + `]]></man:ResourceURI>` + sel + options +
			`<OperationTimeout xmlns="` + soapxml.NSWSMan + `">PT5S</OperationTimeout></Header>` +
			`<Body>` + body + `</Body></Envelope>`
	}
	r := c.post(wrap(actionCreate, "", `<man:OptionSet><man:Option Name="WINRS_CODEPAGE">437</man:Option><man:Option Name="WINRS_NOPROFILE">TRUE</man:Option></man:OptionSet>`,
		`<Shell xmlns="`+soapxml.NSShell+`"><InputStreams>stdin</InputStreams><OutputStreams>stdout stderr</OutputStreams>`+
			`<WorkingDirectory><![CDATA[C:\Work]]></WorkingDirectory><Environment><Variable Name="A">1 &amp; 2</Variable></Environment></Shell>`))
	if r.status != 200 {
		t.Fatalf("Create: %d\n%s", r.status, r.body)
	}
	shellID := r.root.FindText(soapxml.NSShell, "ShellId")
	r = c.post(wrap(actionCommand, shellID, `<man:OptionSet><man:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</man:Option></man:OptionSet>`,
		`<x:CommandLine xmlns:x="`+soapxml.NSShell+`"><x:Command><![CDATA[echo]]></x:Command><x:Arguments><![CDATA[<&>]]></x:Arguments></x:CommandLine>`))
	if r.status != 200 {
		t.Fatalf("Command: %d\n%s", r.status, r.body)
	}
	cmdID := r.root.FindText(soapxml.NSShell, "CommandId")
	out, _, code, _ := c.receiveAll(shellID, cmdID)
	if out != "<&>\r\n" || code != "0" {
		t.Errorf("out=%q code=%s", out, code)
	}
	got := h.requests()[0]
	if got.Codepage != 437 || !got.NoProfile || got.WorkingDirectory != `C:\Work` || got.Environment["A"] != "1 & 2" || got.Command != "echo" || got.Arguments[0] != "<&>" {
		t.Errorf("CommandRequest %+v", got)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	var fr failRecorder
	s, _ := newTestServer(t, Options{Failf: fr.Failf})
	c := newRawClient(t, s)
	shellID := c.createShell()
	unknownShell := newGUID()
	hang := c.command(shellID, "testcmd.exe hang")

	type want struct {
		code, subcode, wsCode, message string
		provider, reported             bool
	}
	shellGone := want{"s:Sender", "w:InvalidSelectors", "2150858843", ShellNotFoundText(unknownShell), false, false}
	cmdGone := want{"s:Sender", "w:InvalidSelectors", "2150858843", CommandNotFoundText, false, false}
	param := want{"s:Sender", "w:InvalidParameter", "87", "The parameter is incorrect. ", true, false}
	cases := []struct {
		name string
		req  string
		want want
	}{
		{"Command on unknown shell", envelope(actionCommand, unknownShell, "", commandBody("echo hi")), shellGone},
		{"Receive on unknown shell", envelope(actionReceive, unknownShell, "", receiveBody(hang)), shellGone},
		{"Delete of unknown shell", envelope(actionDelete, unknownShell, "", ""), shellGone},
		{"Receive of unknown command", envelope(actionReceive, shellID, "", receiveBody(newGUID())), cmdGone},
		{"Signal of unknown command", envelope(actionSignal, shellID, "", `<rsp:Signal CommandId="`+newGUID()+`"><rsp:Code>`+signalTerminate+`</rsp:Code></rsp:Signal>`), cmdGone},
		{"Send to unknown command", envelope(actionSend, shellID, "", `<rsp:Send><rsp:Stream Name="stdin" CommandId="`+newGUID()+`">aGk=</rsp:Stream></rsp:Send>`), cmdGone},
		{"Receive without CommandId", envelope(actionReceive, shellID, "", `<rsp:Receive><rsp:DesiredStream>stdout stderr</rsp:DesiredStream></rsp:Receive>`), param},
		{"Signal without CommandId", envelope(actionSignal, shellID, "", `<rsp:Signal><rsp:Code>`+signalTerminate+`</rsp:Code></rsp:Signal>`), param},
		{"empty command", envelope(actionCommand, shellID, "", commandBody("")), param},
		{"command line over 32767", envelope(actionCommand, shellID, "", commandBody("echo", strings.Repeat("y", 32767))),
			want{"s:Receiver", "w:InternalError", "2147942606", "The filename or extension is too long. ", true, false}},
		{"CommandFault from the host", envelope(actionCommand, shellID, "", commandBody("testcmd.exe", "fault", "2147942405")),
			want{"s:Receiver", "w:InternalError", "2147942405", "Access is denied. ", true, false}},
		{"host error", envelope(actionCommand, shellID, "", commandBody("testcmd.exe", "broken")),
			want{"s:Receiver", "w:InternalError", "2147500037", "Unspecified error ", true, true}},
		{"Receive timeout", envelopeTimeout(actionReceive, shellID, "PT0.2S", "", receiveBody(hang)),
			want{"s:Receiver", "w:TimedOut", "2150858793", TimedOutText, false, false}},
		{"Receive with MaxEnvelopeSize below 8192", strings.Replace(envelope(actionReceive, shellID, "", receiveBody(hang)), ">153600<", ">4096<", 1),
			want{"s:Sender", "w:EncodingLimit", "2150858805", faultEnvelopeLimit().message, false, false}},
		{"unknown Action", envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", shellID, "", ""),
			want{"s:Sender", "a:ActionNotSupported", "2150858771", faultActionNotSupported().message, false, true}},
		{"unparseable envelope", `<env:Envelope xmlns:env="` + soapxml.NSSOAP + `"><env:Header>`,
			want{"s:Sender", "w:SchemaValidationError", "2150858817", faultInvalidXML().message, false, true}},
		{"not a SOAP envelope", `<Envelope/>`,
			want{"s:Sender", "w:SchemaValidationError", "2150858817", faultInvalidXML().message, false, true}},
		{"unknown resource URI", strings.Replace(envelope(actionCreate, "", "", createBody), cmdResource, "http://schemas.microsoft.com/powershell/Microsoft.PowerShell", 1),
			want{"s:Sender", "a:DestinationUnreachable", "2150858770", faultUnknownResource("http://schemas.microsoft.com/powershell/Microsoft.PowerShell").message, false, true}},
		{"unknown option", envelope(actionCreate, "", `<w:OptionSet><w:Option Name="WINRS_FANCY">1</w:Option></w:OptionSet>`, createBody),
			want{"s:Sender", "w:InvalidOptions", "2150858809", faultInvalidOptions().message, false, true}},
		{"invalid option value", envelope(actionCreate, "", `<w:OptionSet><w:Option Name="WINRS_NOPROFILE">maybe</w:Option></w:OptionSet>`, createBody),
			want{"s:Sender", "w:InvalidOptions", "2150858809", faultInvalidOptions().message, false, true}},
		{"unknown mustUnderstand header", envelope(actionCreate, "", `<p:Compression mustUnderstand="true">xpress</p:Compression>`, createBody),
			want{"s:MustUnderstand", "", "2150858768", faultMustUnderstand().message, false, true}},
		{"no MessageID", regexp.MustCompile(`<a:MessageID>[^<]*</a:MessageID>`).ReplaceAllString(envelope(actionCreate, "", "", createBody), ""),
			want{"s:Sender", "a:MessageInformationHeaderRequired", "2150858769", faultHeaderRequired().message, false, true}},
		{"Create body not a shell", envelope(actionCreate, "", "", `<rsp:Pipe/>`),
			want{"s:Sender", "w:SchemaValidationError", "2150858817", faultInvalidXML().message, false, true}},
	}
	for _, tc := range cases {
		r := c.post(tc.req)
		sub, code, msg := faultOf(t, r)
		fcode := r.root.Find(soapxml.NSSOAP, "Code").Child(soapxml.NSSOAP, "Value").Text
		reason := r.root.Find(soapxml.NSSOAP, "Text").Text
		if fcode != tc.want.code || sub != tc.want.subcode || code != tc.want.wsCode || msg != tc.want.message || reason == "" {
			t.Errorf("%s: %s/%s %s %q (reason %q), want %s/%s %s %q", tc.name, fcode, sub, code, msg, reason, tc.want.code, tc.want.subcode, tc.want.wsCode, tc.want.message)
		}
		if pf := r.root.Find(soapxml.NSWSManFault, "ProviderFault") != nil; pf != tc.want.provider {
			t.Errorf("%s: ProviderFault %v", tc.name, pf)
		}
		if m := regexp.MustCompile(`<a:MessageID>([^<]*)</a:MessageID>`).FindStringSubmatch(tc.req); m != nil {
			if rel := r.root.FindText(soapxml.NSAddressing, "RelatesTo"); rel != m[1] {
				t.Errorf("%s: RelatesTo %q, want %q", tc.name, rel, m[1])
			}
		}
		if ct := r.header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
			t.Errorf("%s: Content-Type %q", tc.name, ct)
		}
		if reported := len(fr.take()) > 0; reported != tc.want.reported {
			t.Errorf("%s: Failf called = %v, want %v", tc.name, reported, tc.want.reported)
		}
	}

	// Second Delete of a real shell.
	if r := c.post(envelope(actionDelete, shellID, "", "")); r.status != 200 {
		t.Fatalf("first Delete: %d", r.status)
	}
	_, code, msg := faultOf(t, c.post(envelope(actionDelete, shellID, "", "")))
	if code != "2150858843" || msg != ShellNotFoundText(shellID) {
		t.Errorf("second Delete: %s %q", code, msg)
	}

	// Not POST /wsman, not SOAP.
	resp, err := http.Get("http://" + s.Addr() + "/wsman")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || len(fr.take()) != 1 {
		t.Errorf("GET /wsman: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/wsman", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "text/plain")
	req.SetBasicAuth(testUser, testPassword)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || len(fr.take()) != 1 {
		t.Errorf("text/plain POST: %d", resp.StatusCode)
	}
}

func TestRequestLargerThanMaxEnvelope(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{MaxEnvelopeSize: 10000})
	c := newRawClient(t, s)
	shellID := c.createShell()
	cmdID := c.command(shellID, "testcmd.exe cat")
	big := strings.Repeat("QUFB", 5000)
	r := c.post(envelope(actionSend, shellID, "", `<rsp:Send><rsp:Stream Name="stdin" CommandId="`+cmdID+`">`+big+`</rsp:Stream></rsp:Send>`))
	if sub, code, _ := faultOf(t, r); sub != "w:EncodingLimit" || code != "2150858805" {
		t.Errorf("%s %s", sub, code)
	}
}

func TestInjectedCreateFaultEarlyBoot(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	s.Inject(Injection{Op: OpCreate, Effect: EffectRegistryKeyDeleted, Times: 2})
	for i := 0; i < 2; i++ {
		r := c.post(envelope(actionCreate, "", "", createBody))
		sub, code, msg := faultOf(t, r)
		if sub != "w:InternalError" || code != "2147943418" || msg != "Illegal operation attempted on a registry key that has been marked for deletion. " ||
			r.root.Find(soapxml.NSWSManFault, "ProviderFault") == nil {
			t.Errorf("Create %d: %s %s %q", i, sub, code, msg)
		}
	}
	if s.ShellCount() != 0 {
		t.Error("a faulted Create left a shell")
	}
	if id := c.createShell(); !upperGUID.MatchString(id) {
		t.Errorf("third Create: %q", id)
	}
}

func TestReceiveLongPoll(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	shellID := c.createShell()
	cmdID := c.command(shellID, "testcmd.exe trickle abc")

	start := time.Now()
	r := c.post(envelopeTimeout(actionReceive, shellID, "PT20S", "", receiveBody(cmdID)))
	if r.status != 200 {
		t.Fatalf("HTTP %d\n%s", r.status, r.body)
	}
	res := parseReceive(t, r.root)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Receive with output took %v: it must answer as soon as output exists", el)
	}
	if res.state != stateRunning || res.hasExit || len(res.items) != 1 || string(res.items[0].data) != "abc" {
		t.Errorf("first Receive: %+v", res)
	}
	// Nothing more: the effective timeout ends the long poll.
	start = time.Now()
	_, code, msg := faultOf(t, c.post(envelopeTimeout(actionReceive, shellID, "PT0.3S", "", receiveBody(cmdID))))
	if el := time.Since(start); code != "2150858793" || msg != TimedOutText || el < 300*time.Millisecond || el > 3*time.Second {
		t.Errorf("second Receive: %s %q after %v", code, msg, el)
	}
	// An injected timeout leaves output queued.
	s.Inject(Injection{Op: OpReceive, Effect: EffectTimeout})
	if _, code, _ := faultOf(t, c.receive(shellID, cmdID)); code != "2150858793" {
		t.Errorf("injected timeout: %s", code)
	}
	// Signal terminate ends the process; Done carries its exit code.
	r = c.post(envelope(actionSignal, shellID, "", `<rsp:Signal CommandId="`+cmdID+`"><rsp:Code>`+signalTerminate+`</rsp:Code></rsp:Signal>`))
	if r.status != 200 || r.root.Find(soapxml.NSShell, "SignalResponse") == nil {
		t.Fatalf("Signal: %d\n%s", r.status, r.body)
	}
	out, _, exit, all := c.receiveAll(shellID, cmdID)
	if out != "" || exit != "3221225786" {
		t.Errorf("after terminate: out=%q exit=%s", out, exit)
	}
	last := all[len(all)-1]
	if len(last.items) != 2 || !last.items[0].end || last.items[0].name != "stdout" || !last.items[1].end || last.items[1].name != "stderr" {
		t.Errorf("Done response streams %+v", last.items)
	}
}

func TestReceiveAfterDone(t *testing.T) {
	t.Parallel()
	for _, mode := range []AfterDone{AfterDoneInvalidSelectors, AfterDoneExitZero} {
		s, _ := newTestServer(t, Options{ReceiveAfterDone: mode})
		c := newRawClient(t, s)
		shellID := c.createShell()
		cmdID := c.command(shellID, "testcmd.exe exit 3010")
		if _, _, exit, _ := c.receiveAll(shellID, cmdID); exit != "3010" {
			t.Fatalf("exit %s", exit)
		}
		r := c.receive(shellID, cmdID)
		if mode == AfterDoneInvalidSelectors {
			if _, code, msg := faultOf(t, r); code != "2150858843" || msg != CommandNotFoundText {
				t.Errorf("after Done: %s %q", code, msg)
			}
		} else {
			res := parseReceive(t, r.root)
			if r.status != 200 || res.state != stateDone || res.exitCode != "0" || len(res.items) != 2 {
				t.Errorf("after Done: %d %+v", r.status, res)
			}
		}
		// Signal after Done is fine either way (pypsrp and masterzen send it).
		if r := c.post(envelope(actionSignal, shellID, "", `<rsp:Signal CommandId="`+cmdID+`"><rsp:Code>`+signalCtrlC+`</rsp:Code></rsp:Signal>`)); r.status != 200 {
			t.Errorf("Signal after Done: %d", r.status)
		}
	}
}

func TestStreamsInterleavedAsProduced(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	shellID := c.createShell()
	cmdID := c.command(shellID, "testcmd.exe interleave 3")
	_, _, _, all := c.receiveAll(shellID, cmdID)
	var seq []string
	for _, res := range all {
		for _, it := range res.items {
			if it.end {
				continue
			}
			if n := len(seq); n > 0 && strings.HasPrefix(seq[n-1], it.name+":") {
				seq[n-1] += string(it.data)
				continue
			}
			seq = append(seq, it.name+":"+string(it.data))
		}
	}
	want := []string{"stdout:out0\r\n", "stderr:err0\r\n", "stdout:out1\r\n", "stderr:err1\r\n", "stdout:out2\r\n", "stderr:err2\r\n"}
	if strings.Join(seq, "|") != strings.Join(want, "|") {
		t.Errorf("streams %q, want %q", seq, want)
	}
}

func TestReceiveStaysUnderEnvelopeSize(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	shellID := c.createShell()
	cmdID := c.command(shellID, "testcmd.exe emit stdout 100000 5")
	var out []byte
	n := 0
	for {
		r := c.post(strings.Replace(envelope(actionReceive, shellID, "", receiveBody(cmdID)), ">153600<", ">8192<", 1))
		if r.status != 200 {
			t.Fatalf("HTTP %d", r.status)
		}
		if len(r.body) > 8192 {
			t.Fatalf("response of %d bytes, MaxEnvelopeSize 8192", len(r.body))
		}
		n++
		res := parseReceive(t, r.root)
		for _, it := range res.items {
			out = append(out, it.data...)
		}
		if res.state == stateDone {
			break
		}
	}
	if string(out) != string(testData(100000, 5)) || n < 15 {
		t.Errorf("%d bytes in %d Receives", len(out), n)
	}
}

func TestShellIdleTimeout(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s, _ := newTestServer(t, Options{Now: clock, IdleTimeout: time.Hour})
	c := newRawClient(t, s)
	r := c.post(envelope(actionCreate, "", "", `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:IdleTimeOut>PT60S</rsp:IdleTimeOut></rsp:Shell>`))
	if it := r.root.FindText(soapxml.NSShell, "IdleTimeOut"); it != "PT60.000S" {
		t.Errorf("IdleTimeOut %q", it)
	}
	short := r.root.FindText(soapxml.NSShell, "ShellId")
	long := c.createShell()
	if it := c.post(envelope(actionCreate, "", "", createBody)).root.FindText(soapxml.NSShell, "IdleTimeOut"); it != "PT3600.000S" {
		t.Errorf("default IdleTimeOut %q", it)
	}
	advance(59 * time.Second)
	c.command(short, "testcmd.exe exit 0") // activity
	advance(59 * time.Second)
	if s.ShellCount() != 3 {
		t.Fatalf("%d shells before the idle timeout", s.ShellCount())
	}
	advance(2 * time.Second)
	if _, code, _ := faultOf(t, c.post(envelope(actionCommand, short, "", commandBody("echo hi")))); code != "2150858843" {
		t.Errorf("idle shell: %s", code)
	}
	if id := c.command(long, "testcmd.exe exit 0"); id == "" {
		t.Error("the other shell expired too")
	}
}

func TestInjectionLatencyAndAfterHandling(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	c := newRawClient(t, s)
	s.Inject(Injection{Op: OpCreate, Delay: 300 * time.Millisecond})
	start := time.Now()
	c.createShell()
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("latency injection: Create answered in %v", el)
	}
	// The shell is created, the answer lost.
	s.Inject(Injection{Op: OpCreate, Effect: EffectDropRST, AfterHandling: true})
	req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(envelope(actionCreate, "", "", createBody)))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(testUser, testPassword)
	if resp, err := c.http.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("dropped Create got an answer")
	}
	if n := s.ShellCount(); n != 2 {
		t.Errorf("%d shells, want 2 (the dropped Create was performed)", n)
	}
	// Times < 0 lasts until cleared; OpAny matches everything.
	s.Inject(Injection{Op: OpAny, Effect: EffectUnavailable, Times: -1})
	for i := 0; i < 3; i++ {
		r := c.post(envelope(actionCreate, "", "", createBody))
		if r.status != 503 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	if s.PendingInjections() != 1 {
		t.Error("a permanent injection was used up")
	}
	s.ClearInjections()
	c.createShell()
}

func TestKeepAliveRequests(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{KeepAliveRequests: 2})
	c := newRawClient(t, s)
	var closes []bool
	for i := 0; i < 4; i++ {
		r := c.post(envelope(actionCreate, "", "", createBody))
		closes = append(closes, r.close)
	}
	if closes[0] || !closes[1] || closes[2] || !closes[3] {
		t.Errorf("Connection: close on responses %v, want every second", closes)
	}
	s.SetKeepAliveRequests(0)
	for i := 0; i < 3; i++ {
		if c.post(envelope(actionCreate, "", "", createBody)).close {
			t.Errorf("request %d: Connection: close with no limit", i)
		}
	}
	s.SetLatency(200*time.Millisecond, 50*time.Millisecond)
	start := time.Now()
	c.createShell()
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("SetLatency(200ms): answered in %v", el)
	}
	s.SetLatency(0, 0)
}

func TestUnauthorizedShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		auth AuthMethods
		want []string
	}{
		{0, []string{"Negotiate", `Basic realm="WSMAN"`}},
		{AuthBasic, []string{`Basic realm="WSMAN"`}},
		{AuthNTLM, []string{"Negotiate"}},
	} {
		s, _ := newTestServer(t, Options{Auth: tc.auth})
		for _, user := range []string{"", testUser} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/wsman", strings.NewReader(envelope(actionCreate, "", "", createBody)))
			req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
			if user != "" {
				req.SetBasicAuth(user, "wrong")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || len(body) != 0 || resp.Header.Get("Content-Length") != "0" || resp.Header.Get("Content-Type") != "" ||
				resp.Header.Get("Server") != "Microsoft-HTTPAPI/2.0" || strings.Join(resp.Header.Values("WWW-Authenticate"), "|") != strings.Join(tc.want, "|") {
				t.Errorf("auth %d user %q: %d %v %q", tc.auth, user, resp.StatusCode, resp.Header, body)
			}
		}
		if s.ShellCount() != 0 {
			t.Error("unauthenticated Create made a shell")
		}
	}
	// Basic disabled: Basic credentials are refused even when right.
	s, _ := newTestServer(t, Options{Auth: AuthNTLM})
	r := newRawClient(t, s)
	req, _ := http.NewRequest(http.MethodPost, r.url, strings.NewReader(envelope(actionCreate, "", "", createBody)))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(testUser, testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Basic on an NTLM-only listener: %d", resp.StatusCode)
	}
}

func TestShellsBelongToTheirUser(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{Users: map[string]string{testUser: testPassword, "other": "secret"}})
	c := newRawClient(t, s)
	shellID := c.createShell()
	o := newRawClient(t, s)
	o.user, o.pass = "other", "secret"
	if _, code, msg := faultOf(t, o.post(envelope(actionCommand, shellID, "", commandBody("echo hi")))); code != "2150858843" || msg != ShellNotFoundText(shellID) {
		t.Errorf("another user's shell: %s %q", code, msg)
	}
	if id := c.command(shellID, "echo", "hi"); id == "" {
		t.Error("owner lost the shell")
	}
}

// createFaultHost is the test host with the optional CreateFaulter.
type createFaultHost struct {
	*testHost
	mu    sync.Mutex
	fault *CommandFault
}

func (h *createFaultHost) CreateFault() *CommandFault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

func TestHostCreateFault(t *testing.T) {
	t.Parallel()
	h := &createFaultHost{testHost: newTestHost(t), fault: &CommandFault{Code: CodeRegistryKeyDeleted, Message: "Illegal operation attempted on a registry key that has been marked for deletion."}}
	s := New(h, Options{Users: map[string]string{testUser: testPassword}, Failf: t.Errorf})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newRawClient(t, s)
	r := c.post(envelope(actionCreate, "", "", createBody))
	if sub, code, msg := faultOf(t, r); sub != "w:InternalError" || code != "2147943418" || msg != "Illegal operation attempted on a registry key that has been marked for deletion. " {
		t.Errorf("Create while the host faults it: %s %s %q", sub, code, msg)
	}
	if s.ShellCount() != 0 {
		t.Error("faulted Create made a shell")
	}
	h.mu.Lock()
	h.fault = nil
	h.mu.Unlock()
	c.createShell()
}

func TestRejectUnencrypted(t *testing.T) {
	t.Parallel()
	s, h := newTestServer(t, Options{RejectUnencrypted: true})
	if err := s.ListenTLS("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := newRawClient(t, s)
	req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(envelope(actionCreate, "", "", createBody)))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(testUser, testPassword)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || s.ShellCount() != 0 {
		t.Errorf("Basic over HTTP with AllowUnencrypted=false: %d", resp.StatusCode)
	}
	// Unsealed NTLM over HTTP: refused as well (packer#6205), although the
	// handshake itself succeeds; sealed NTLM is TestClientNTLMSealed.
	hh, hp := hostPort(t, s.Addr())
	params := winrm.NewParameters("PT5S", "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	nc, _ := winrm.NewClientWithParameters(&winrm.Endpoint{Host: hh, Port: hp}, testUser, testPassword, params)
	if _, _, _, err := nc.RunCmdWithContext(context.Background(), "echo hi"); err == nil || err.Error() != "http response error: 401 - invalid content type" {
		t.Errorf("unsealed NTLM over HTTP with AllowUnencrypted=false: %v", err)
	}
	if s.ShellCount() != 0 || len(h.requests()) != 0 {
		t.Error("unsealed NTLM over HTTP was served")
	}
	hst, port := hostPort(t, s.TLSAddr())
	wc, _ := winrm.NewClient(&winrm.Endpoint{Host: hst, Port: port, HTTPS: true, CACert: s.CertificatePEM()}, testUser, testPassword)
	if out, _, _, err := wc.RunCmdWithContext(context.Background(), "echo hi"); err != nil || out != "hi\r\n" {
		t.Fatalf("HTTPS: out=%q err=%v", out, err)
	}
	if len(h.requests()) != 1 {
		t.Errorf("%d processes", len(h.requests()))
	}
}
