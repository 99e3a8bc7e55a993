package wsman

import (
	"encoding/xml"
	"strings"
)

// URIs of the protocol that are not namespaces (those are in soapxml).
const (
	anonymous   = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	cmdResource = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
)

// xmlText escapes s for element content.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// xmlAttr escapes s for a double-quoted attribute value.
func xmlAttr(s string) string {
	return xmlText(s)
}
