package replay

import (
	"encoding/xml"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// qname names an element or attribute with the usual prefix of its
// namespace (s, a, w, p, rsp, x, f, xml), or {URI} for another namespace.
func qname(n xml.Name) string {
	p := map[string]string{
		soapxml.NSSOAP:       "s",
		soapxml.NSAddressing: "a",
		soapxml.NSWSMan:      "w",
		soapxml.NSMSWSMan:    "p",
		soapxml.NSShell:      "rsp",
		soapxml.NSTransfer:   "x",
		soapxml.NSWSManFault: "f",
		soapxml.NSXML:        "xml",
		"":                   "",
	}[n.Space]
	if p == "" && n.Space != "" {
		p = "{" + n.Space + "}"
	}
	if p == "" {
		return n.Local
	}
	return p + ":" + n.Local
}

// attrMap maps the attributes (namespace declarations aside) by qname.
func attrMap(n *soapxml.Node) map[string]string {
	m := map[string]string{}
	for _, a := range n.Attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		m[qname(a.Name)] = a.Value
	}
	return m
}
