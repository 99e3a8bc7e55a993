package wsman

import (
	"fmt"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// fault is a SOAP fault as WinRM sends it: always HTTP 500 with the
// wsman fault Action.
type fault struct {
	code    string // s:Sender or s:Receiver
	subcode string // prefixed with a declared prefix: w:… or a:…
	reason  string // s:Reason/s:Text
	detail  string // optional w:FaultDetail URI
	wsCode  uint32 // f:WSManFault Code
	message string // f:Message text
	// provider wraps message in f:ProviderFault (faults raised by the cmd
	// shell plugin, winrscmd.dll).
	provider bool
}

const (
	faultDetailUnexpectedSelectors = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"
	faultDetailInvalidValue        = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue"
	faultDetailMinEnvelope         = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MinimumEnvelopeLimit"
)

// Fault codes (f:WSManFault Code) this server sends.
const (
	CodeTimedOut                = 2150858793 // 0x80338029 w:TimedOut
	CodeInvalidSelectors        = 2150858843 // 0x8033805B w:InvalidSelectors
	CodeInvalidParameter        = 87         // ERROR_INVALID_PARAMETER from winrscmd.dll
	CodeFileNotFound            = 2147942402 // 0x80070002
	CodeFilenameTooLong         = 2147942606 // 0x800700CE
	CodeRegistryKeyDeleted      = 2147943418 // 0x800703FA
	CodeAccessDenied            = 2147942405 // 0x80070005
	CodeMaxShells               = 2150859173 // 0x803381A5
	CodeMaxOperations           = 2150859174 // 0x803381A6
	CodeActionNotSupported      = 2150858771 // 0x80338013
	CodeDestinationUnreachable  = 2150858770 // 0x80338012
	CodeSchemaValidation        = 2150858817 // 0x80338041
	CodeMustUnderstand          = 2150858768 // 0x80338010
	CodeHeaderRequired          = 2150858769 // 0x80338011
	CodeInvalidOptions          = 2150858809 // 0x80338039
	CodeEncodingLimit           = 2150858805 // 0x80338035
	CodeInternalErrorUnreported = 2147500037 // 0x80004005 E_FAIL
)

// TimedOutText is the exact Receive timeout text, two trailing spaces
// included (masterzen retries because it contains "OperationTimeout").
const TimedOutText = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "

const invalidSelectorsReason = "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. "

// CommandNotFoundText is Windows' text for an unknown CommandId
// (test_winrs_bad_cmd_id.yml).
const CommandNotFoundText = "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. "

func faultTimedOut() *fault {
	return &fault{code: "s:Receiver", subcode: "w:TimedOut", reason: TimedOutText, wsCode: CodeTimedOut, message: TimedOutText}
}

// ShellNotFoundText is Windows' text for an unknown or deleted ShellId.
func ShellNotFoundText(shellID string) string {
	return "The request for the Windows Remote Shell with ShellId " + shellID + " failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "
}

func faultShellNotFound(shellID string) *fault {
	return &fault{code: "s:Sender", subcode: "w:InvalidSelectors", reason: invalidSelectorsReason, detail: faultDetailUnexpectedSelectors,
		wsCode: CodeInvalidSelectors, message: ShellNotFoundText(shellID)}
}

func faultMissingSelector() *fault {
	return &fault{code: "s:Sender", subcode: "w:InvalidSelectors", reason: invalidSelectorsReason, detail: faultDetailUnexpectedSelectors,
		wsCode: CodeInvalidSelectors, message: invalidSelectorsReason}
}

func faultCommandNotFound() *fault {
	return &fault{code: "s:Sender", subcode: "w:InvalidSelectors", reason: invalidSelectorsReason, detail: faultDetailUnexpectedSelectors,
		wsCode: CodeInvalidSelectors, message: CommandNotFoundText}
}

func faultInvalidParameter() *fault {
	const t = "The parameter is incorrect. "
	return &fault{code: "s:Sender", subcode: "w:InvalidParameter", reason: t, detail: faultDetailInvalidValue,
		wsCode: CodeInvalidParameter, message: t, provider: true}
}

// faultInternal is a failure inside the cmd shell plugin (winrscmd.dll):
// the shape of test_winrs_no_cmd_shell.yml.
func faultInternal(code uint32, message string) *fault {
	message = windowsText(message)
	return &fault{code: "s:Receiver", subcode: "w:InternalError", reason: message, wsCode: code, message: message, provider: true}
}

// windowsText ends a message the way FormatMessage text arrives in WinRM
// faults: a sentence followed by one space.
func windowsText(s string) string {
	s = strings.TrimRight(s, " \r\n")
	return s + " "
}

func faultMaxShells(n int) *fault {
	return &fault{code: "s:Sender", subcode: "w:QuotaLimit",
		reason:  "The WS-Management service cannot process the request. The maximum number of concurrent shells for this user has been exceeded. Close existing shells or raise the quota for this user. ",
		wsCode:  CodeMaxShells,
		message: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ", n)}
}

func faultMaxOperations(n int) *fault {
	return &fault{code: "s:Sender", subcode: "w:QuotaLimit",
		reason:  "The WS-Management service cannot process the request. The maximum number of concurrent operations for this user has been exceeded. Close existing operations for this user, or raise the quota for this user. ",
		wsCode:  CodeMaxOperations,
		message: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent operations, which has been exceeded. Close existing operations for this user, or raise the quota for this user. ", n)}
}

func faultInvalidXML() *fault {
	const t = "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. "
	return &fault{code: "s:Sender", subcode: "w:SchemaValidationError", reason: t, wsCode: CodeSchemaValidation, message: t}
}

func faultMustUnderstand() *fault {
	const t = "The WS-Management service cannot process a SOAP header in the request that is marked as mustUnderstand by the client. This could be caused by the use of a version of the protocol which is not supported, or may be an incompatibility between the client and server implementations. "
	return &fault{code: "s:MustUnderstand", reason: t, wsCode: CodeMustUnderstand, message: t}
}

func faultHeaderRequired() *fault {
	const t = "The WS-Management service cannot process the request. The request does not have all the expected SOAP headers. "
	return &fault{code: "s:Sender", subcode: "a:MessageInformationHeaderRequired", reason: t, wsCode: CodeHeaderRequired, message: t}
}

func faultActionNotSupported() *fault {
	const t = "The WS-Management service does not support the action specified in the request. "
	return &fault{code: "s:Sender", subcode: "a:ActionNotSupported", reason: t, wsCode: CodeActionNotSupported, message: t}
}

func faultUnknownResource(uri string) *fault {
	t := "The WS-Management service cannot process the request. The resource URI (" + uri + ") was not found in the WS-Management catalog. The catalog contains the metadata that describes resources, or logical endpoints. "
	return &fault{code: "s:Sender", subcode: "a:DestinationUnreachable", reason: t, wsCode: CodeDestinationUnreachable, message: t}
}

func faultInvalidOptions() *fault {
	const t = "The WS-Management service cannot process the request because one or more options are not valid. The option names or values may not be valid or they are used in incorrect combinations. Retrieve the catalog entry for the resource and determine how to correct the invalid option values. "
	return &fault{code: "s:Sender", subcode: "w:InvalidOptions", reason: t, wsCode: CodeInvalidOptions, message: t}
}

func faultEnvelopeLimit() *fault {
	const t = "The WS-Management service cannot process the request because the encoding of the request exceeds an internal encoding limit. Reconfigure the client to send messages which fit the encoding limits of the service. "
	return &fault{code: "s:Sender", subcode: "w:EncodingLimit", reason: t, detail: faultDetailMinEnvelope, wsCode: CodeEncodingLimit, message: t}
}

// render writes the fault envelope as Windows lays it out.
func (f *fault) render(relatesTo, machine string, activity bool) string {
	var b strings.Builder
	b.WriteString(`<s:Envelope xml:lang="en-US" xmlns:s="` + soapxml.NSSOAP + `" xmlns:a="` + soapxml.NSAddressing + `" xmlns:x="` + soapxml.NSTransfer +
		`" xmlns:e="` + soapxml.NSEventing + `" xmlns:n="` + soapxml.NSEnumeration + `" xmlns:w="` + soapxml.NSWSMan + `" xmlns:p="` + soapxml.NSMSWSMan + `">`)
	writeHeader(&b, actionFault, relatesTo, activity)
	b.WriteString(`<s:Body><s:Fault><s:Code><s:Value>` + f.code + `</s:Value>`)
	if f.subcode != "" {
		b.WriteString(`<s:Subcode><s:Value>` + f.subcode + `</s:Value></s:Subcode>`)
	}
	b.WriteString(`</s:Code><s:Reason><s:Text xml:lang="en-US">` + xmlText(f.reason) + `</s:Text></s:Reason><s:Detail>`)
	if f.detail != "" {
		b.WriteString(`<w:FaultDetail>` + f.detail + `</w:FaultDetail>`)
	}
	fmt.Fprintf(&b, `<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>`, soapxml.NSWSManFault, f.wsCode, xmlAttr(machine))
	if f.provider {
		b.WriteString(`<f:ProviderFault provider="Shell cmd plugin" path="%systemroot%\system32\winrscmd.dll">` + xmlText(f.message) + `</f:ProviderFault>`)
	} else {
		b.WriteString(xmlText(f.message))
	}
	b.WriteString(`</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`)
	return b.String()
}
