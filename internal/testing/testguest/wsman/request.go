package wsman

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// Op is the WinRM operation a request performs.
type Op int

const (
	// OpAny matches every operation in an Injection.
	OpAny Op = iota
	OpCreate
	OpCommand
	OpReceive
	OpSend
	OpSignal
	OpDelete
	// OpUnknown is a request the server could not classify (bad envelope or
	// unknown Action).
	OpUnknown
)

func (o Op) String() string {
	switch o {
	case OpAny:
		return "Any"
	case OpCreate:
		return "Create"
	case OpCommand:
		return "Command"
	case OpReceive:
		return "Receive"
	case OpSend:
		return "Send"
	case OpSignal:
		return "Signal"
	case OpDelete:
		return "Delete"
	default:
		return "Unknown"
	}
}

// Actions of the shell resource.
const (
	actionCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	actionDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	actionCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
	actionReceive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
	actionSend    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
	actionSignal  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
	actionFault   = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

	stateDone    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
	stateRunning = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"

	signalTerminate = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
	signalCtrlC     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
	signalCtrlBreak = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"
)

func opOf(action string) Op {
	switch action {
	case actionCreate:
		return OpCreate
	case actionCommand:
		return OpCommand
	case actionReceive:
		return OpReceive
	case actionSend:
		return OpSend
	case actionSignal:
		return OpSignal
	case actionDelete:
		return OpDelete
	}
	return OpUnknown
}

type wsOption struct {
	name, value string
	mustComply  bool
}

// request is a parsed WS-Management request envelope.
type request struct {
	op          Op
	action      string
	messageID   string
	to          string
	resourceURI string
	hasResource bool
	timeout     time.Duration
	hasTimeout  bool
	maxEnvelope int
	selectors   map[string]string
	options     []wsOption
	body        *soapxml.Node
}

// requestError is a request the server cannot process: the fault to answer
// and whether the test is to be told (Failf).
type requestError struct {
	fault  *fault
	report string
}

// knownHeaders are the header elements the server understands.
var knownHeaders = map[[2]string]bool{
	{soapxml.NSAddressing, "To"}:          true,
	{soapxml.NSAddressing, "ReplyTo"}:     true,
	{soapxml.NSAddressing, "MessageID"}:   true,
	{soapxml.NSAddressing, "Action"}:      true,
	{soapxml.NSWSMan, "ResourceURI"}:      true,
	{soapxml.NSWSMan, "MaxEnvelopeSize"}:  true,
	{soapxml.NSWSMan, "OperationTimeout"}: true,
	{soapxml.NSWSMan, "Locale"}:           true,
	{soapxml.NSWSMan, "SelectorSet"}:      true,
	{soapxml.NSWSMan, "OptionSet"}:        true,
	{soapxml.NSMSWSMan, "DataLocale"}:     true,
	{soapxml.NSMSWSMan, "SessionId"}:      true,
	{soapxml.NSMSWSMan, "OperationID"}:    true,
	{soapxml.NSMSWSMan, "SequenceId"}:     true,
}

// parseRequest parses an envelope. A nil *requestError means success; a
// request may still be returned with an error so the fault can relate to
// its MessageID. warnings are things to report that do not fail the request.
func parseRequest(body []byte) (*request, *requestError, []string) {
	root, err := soapxml.Parse(body)
	if err != nil {
		return nil, &requestError{fault: faultInvalidXML(), report: fmt.Sprintf("unparseable request envelope: %v", err)}, nil
	}
	if !root.Is(soapxml.NSSOAP, "Envelope") {
		return nil, &requestError{fault: faultInvalidXML(), report: fmt.Sprintf("request root element is {%s}%s, not a SOAP 1.2 Envelope", root.Name.Space, root.Name.Local)}, nil
	}
	header := root.Child(soapxml.NSSOAP, "Header")
	bodyEl := root.Child(soapxml.NSSOAP, "Body")
	req := &request{op: OpUnknown, selectors: map[string]string{}, body: bodyEl}
	var warnings []string
	if header == nil || bodyEl == nil {
		return req, &requestError{fault: faultInvalidXML(), report: "request envelope lacks s:Header or s:Body"}, nil
	}
	for _, h := range header.Children {
		if !knownHeaders[[2]string{h.Name.Space, h.Name.Local}] {
			if h.MustUnderstand() {
				return req, &requestError{fault: faultMustUnderstand(), report: fmt.Sprintf("unknown mustUnderstand header {%s}%s", h.Name.Space, h.Name.Local)}, nil
			}
			warnings = append(warnings, fmt.Sprintf("unknown header {%s}%s ignored", h.Name.Space, h.Name.Local))
			continue
		}
		val := strings.TrimSpace(h.Text)
		switch h.Name.Local {
		case "Action":
			req.action = val
		case "MessageID":
			req.messageID = val
		case "To":
			req.to = val
		case "ResourceURI":
			req.resourceURI = val
			req.hasResource = true
		case "OperationTimeout":
			d, ok := parseDuration(val)
			if !ok {
				return req, &requestError{fault: faultInvalidXML(), report: fmt.Sprintf("unparseable OperationTimeout %q", val)}, nil
			}
			req.timeout, req.hasTimeout = d, true
		case "MaxEnvelopeSize":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return req, &requestError{fault: faultInvalidXML(), report: fmt.Sprintf("unparseable MaxEnvelopeSize %q", val)}, nil
			}
			req.maxEnvelope = n
		case "SelectorSet":
			for _, s := range h.All(soapxml.NSWSMan, "Selector") {
				name, _ := s.Attr("", "Name")
				req.selectors[name] = strings.TrimSpace(s.Text)
			}
			if len(h.Children) != len(h.All(soapxml.NSWSMan, "Selector")) {
				warnings = append(warnings, "unexpected element in w:SelectorSet")
			}
		case "OptionSet":
			for _, o := range h.Children {
				if !o.Is(soapxml.NSWSMan, "Option") {
					warnings = append(warnings, fmt.Sprintf("unexpected element {%s}%s in w:OptionSet", o.Name.Space, o.Name.Local))
					continue
				}
				name, _ := o.Attr("", "Name")
				mc, _ := o.Attr("", "MustComply")
				req.options = append(req.options, wsOption{name: name, value: strings.TrimSpace(o.Text), mustComply: strings.EqualFold(mc, "true")})
			}
		}
	}
	if req.messageID == "" {
		return req, &requestError{fault: faultHeaderRequired(), report: "request has no a:MessageID"}, nil
	}
	if req.action == "" {
		return req, &requestError{fault: faultHeaderRequired(), report: "request has no a:Action"}, nil
	}
	req.op = opOf(req.action)
	if req.op == OpUnknown {
		return req, &requestError{fault: faultActionNotSupported(), report: fmt.Sprintf("unknown Action %q", req.action)}, nil
	}
	if req.resourceURI != cmdResource {
		return req, &requestError{fault: faultUnknownResource(req.resourceURI), report: fmt.Sprintf("unknown resource URI %q for %s", req.resourceURI, req.op)}, nil
	}
	return req, nil, warnings
}

// option returns the value of a WS-Management option.
func (r *request) option(name string) (string, bool) {
	for _, o := range r.options {
		if o.name == name {
			return o.value, true
		}
	}
	return "", false
}

var durationRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration parses an xs:duration such as PT60S, PT0.5S, PT30M or
// P0DT0H0M1S.
func parseDuration(s string) (time.Duration, bool) {
	m := durationRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, false
	}
	var d time.Duration
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute}
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(n) * u
	}
	if m[6] != "" {
		f, err := strconv.ParseFloat(m[6], 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, true
}

// formatSeconds renders d as Windows does in rsp:IdleTimeOut: PT7200.000S.
func formatSeconds(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("PT%d.%03dS", ms/1000, ms%1000)
}

// formatDayTime renders d as Windows does in rsp:ShellRunTime: P0DT0H0M0S.
func formatDayTime(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("P%dDT%dH%dM%dS", s/86400, s%86400/3600, s%3600/60, s%60)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TRUE", "1":
		return true, true
	case "FALSE", "0":
		return false, true
	}
	return false, false
}
