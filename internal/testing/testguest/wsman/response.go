package wsman

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// newGUID returns a random version 4 GUID in Windows' uppercase form.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Envelope openings as Windows declares namespaces for each response kind.
const (
	openFull = `<s:Envelope xml:lang="en-US" xmlns:s="` + soapxml.NSSOAP + `" xmlns:a="` + soapxml.NSAddressing + `" xmlns:x="` + soapxml.NSTransfer +
		`" xmlns:w="` + soapxml.NSWSMan + `" xmlns:rsp="` + soapxml.NSShell + `" xmlns:p="` + soapxml.NSMSWSMan + `">`
	openReceive = `<s:Envelope xml:lang="en-US" xmlns:s="` + soapxml.NSSOAP + `" xmlns:a="` + soapxml.NSAddressing +
		`" xmlns:w="` + soapxml.NSWSMan + `" xmlns:rsp="` + soapxml.NSShell + `" xmlns:p="` + soapxml.NSMSWSMan + `">`
	openDelete = `<s:Envelope xml:lang="en-US" xmlns:s="` + soapxml.NSSOAP + `" xmlns:a="` + soapxml.NSAddressing +
		`" xmlns:w="` + soapxml.NSWSMan + `" xmlns:p="` + soapxml.NSMSWSMan + `">`
	closeEnvelope = `</s:Envelope>`
)

// writeHeader writes s:Header: Action, a fresh MessageID, optionally
// p:ActivityId (Windows Server 2012 R2 and later), To anonymous and
// RelatesTo verbatim.
func writeHeader(b *strings.Builder, action, relatesTo string, activity bool) {
	b.WriteString(`<s:Header><a:Action>` + action + `</a:Action><a:MessageID>uuid:` + newGUID() + `</a:MessageID>`)
	if activity {
		b.WriteString(`<p:ActivityId>` + newGUID() + `</p:ActivityId>`)
	}
	b.WriteString(`<a:To>` + anonymous + `</a:To>`)
	if relatesTo != "" {
		b.WriteString(`<a:RelatesTo>` + xmlText(relatesTo) + `</a:RelatesTo>`)
	}
	b.WriteString(`</s:Header>`)
}

func simpleResponse(open, action, relatesTo, body string, activity bool) string {
	var b strings.Builder
	b.WriteString(open)
	writeHeader(&b, action, relatesTo, activity)
	b.WriteString(`<s:Body>` + body + `</s:Body>` + closeEnvelope)
	return b.String()
}

// createResponse renders the CreateResponse: x:ResourceCreated with the
// ShellId selector and, unless selectorOnly (WMF 2.0), rsp:Shell.
func createResponse(relatesTo, address string, sh *shell, selectorOnly, activity bool) string {
	var b strings.Builder
	b.WriteString(`<x:ResourceCreated><a:Address>` + xmlText(address) + `</a:Address><a:ReferenceParameters><w:ResourceURI>` + cmdResource +
		`</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` + sh.id + `</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`)
	if !selectorOnly {
		b.WriteString(`<rsp:Shell xmlns:rsp="` + soapxml.NSShell + `"><rsp:ShellId>` + sh.id + `</rsp:ShellId><rsp:ResourceUri>` + cmdResource +
			`</rsp:ResourceUri><rsp:Owner>` + xmlText(sh.owner) + `</rsp:Owner><rsp:ClientIP>` + xmlText(sh.clientIP) + `</rsp:ClientIP>`)
		if len(sh.env) > 0 {
			b.WriteString(`<rsp:Environment>`)
			for _, v := range sh.env {
				// Windows echoes variable names with backslashes removed
				// (test_winrs_environment.yml); the process sees them intact.
				b.WriteString(`<rsp:Variable Name="` + xmlAttr(strings.ReplaceAll(v.name, `\`, "")) + `">` + xmlText(v.value) + `</rsp:Variable>`)
			}
			b.WriteString(`</rsp:Environment>`)
		}
		if sh.workDir != "" {
			b.WriteString(`<rsp:WorkingDirectory>` + xmlText(sh.workDir) + `</rsp:WorkingDirectory>`)
		}
		b.WriteString(`<rsp:IdleTimeOut>` + formatSeconds(sh.idle) + `</rsp:IdleTimeOut><rsp:InputStreams>` + xmlText(sh.inStreams) +
			`</rsp:InputStreams><rsp:OutputStreams>` + xmlText(sh.outStreams) + `</rsp:OutputStreams><rsp:ShellRunTime>` + formatDayTime(0) +
			`</rsp:ShellRunTime><rsp:ShellInactivity>` + formatDayTime(0) + `</rsp:ShellInactivity></rsp:Shell>`)
	}
	return simpleResponse(openFull, actionCreate+"Response", relatesTo, b.String(), activity)
}

func commandResponse(relatesTo, commandID string, activity bool) string {
	return simpleResponse(openFull, actionCommand+"Response", relatesTo,
		`<rsp:CommandResponse><rsp:CommandId>`+commandID+`</rsp:CommandId></rsp:CommandResponse>`, activity)
}

func sendResponse(relatesTo string, activity bool) string {
	return simpleResponse(openFull, actionSend+"Response", relatesTo, `<rsp:SendResponse/>`, activity)
}

func signalResponse(relatesTo string, activity bool) string {
	return simpleResponse(openFull, actionSignal+"Response", relatesTo, `<rsp:SignalResponse/>`, activity)
}

func deleteResponse(relatesTo string, activity bool) string {
	return simpleResponse(openDelete, actionDelete+"Response", relatesTo, ``, activity)
}

// receiveBuilder assembles a ReceiveResponse within an envelope budget.
type receiveBuilder struct {
	b         strings.Builder
	commandID string
}

func newReceiveBuilder(relatesTo, commandID string, activity bool) *receiveBuilder {
	r := &receiveBuilder{commandID: commandID}
	r.b.WriteString(openReceive)
	writeHeader(&r.b, actionReceive+"Response", relatesTo, activity)
	r.b.WriteString(`<s:Body><rsp:ReceiveResponse>`)
	return r
}

func (r *receiveBuilder) streamOpen(name string) string {
	return `<rsp:Stream Name="` + name + `" CommandId="` + r.commandID + `">`
}

// chunkCost is the size a stream element carrying n bytes adds.
func (r *receiveBuilder) chunkCost(name string, n int) int {
	return len(r.streamOpen(name)) + base64.StdEncoding.EncodedLen(n) + len(`</rsp:Stream>`)
}

// maxBytes is how many data bytes fit in a stream element of at most room
// bytes.
func (r *receiveBuilder) maxBytes(name string, room int) int {
	over := len(r.streamOpen(name)) + len(`</rsp:Stream>`)
	if room <= over {
		return 0
	}
	return (room - over) / 4 * 3
}

func (r *receiveBuilder) addChunk(name string, data []byte) {
	r.b.WriteString(r.streamOpen(name) + base64.StdEncoding.EncodeToString(data) + `</rsp:Stream>`)
}

func (r *receiveBuilder) trailer(streams []string, done bool, exitCode uint32) string {
	var b strings.Builder
	if done {
		for _, s := range streams {
			b.WriteString(`<rsp:Stream Name="` + s + `" CommandId="` + r.commandID + `" End="true"></rsp:Stream>`)
		}
		b.WriteString(`<rsp:CommandState CommandId="` + r.commandID + `" State="` + stateDone + `"><rsp:ExitCode>` +
			strconv.FormatUint(uint64(exitCode), 10) + `</rsp:ExitCode></rsp:CommandState>`)
	} else {
		b.WriteString(`<rsp:CommandState CommandId="` + r.commandID + `" State="` + stateRunning + `"></rsp:CommandState>`)
	}
	b.WriteString(`</rsp:ReceiveResponse></s:Body>` + closeEnvelope)
	return b.String()
}

// maxTrailer is the largest trailer: End markers and Done with a ten-digit
// exit code.
func (r *receiveBuilder) maxTrailer(streams []string) int {
	return len(r.trailer(streams, true, 4294967295))
}

func (r *receiveBuilder) len() int { return r.b.Len() }

func (r *receiveBuilder) finish(streams []string, done bool, exitCode uint32) string {
	r.b.WriteString(r.trailer(streams, done, exitCode))
	return r.b.String()
}
