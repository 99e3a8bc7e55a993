package replay

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespace URIs of the WS-Management shell protocol.
const (
	nsSOAP     = "http://www.w3.org/2003/05/soap-envelope"
	nsAddr     = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSMan    = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsMSWSMan  = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	nsShell    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsTransfer = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsWSManFlt = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
	nsXML      = "http://www.w3.org/XML/1998/namespace"
)

// node is an XML element with resolved namespace URIs: the comparison's
// view of a SOAP envelope.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     string
}

// parseXML parses one XML document (CDATA sections become text).
func parseXML(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var root *node
	var stack []*node
	var text []strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name, attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
			text = append(text, strings.Builder{})
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = text[len(text)-1].String()
			stack = stack[:len(stack)-1]
			text = text[:len(text)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, errors.New("text outside the root element")
				}
				continue
			}
			text[len(text)-1].Write(t)
		case xml.Directive:
			return nil, fmt.Errorf("unexpected XML directive <!%s>", t)
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	if len(stack) != 0 {
		return nil, errors.New("unterminated element")
	}
	return root, nil
}

func (n *node) is(space, local string) bool {
	return n != nil && n.name.Space == space && n.name.Local == local
}

// attr returns the attribute with the given namespace URI ("" for an
// unqualified attribute) and local name.
func (n *node) attr(space, local string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// find returns the first element (depth first, n included) with the name.
func find(n *node, space, local string) *node {
	if n == nil {
		return nil
	}
	if n.is(space, local) {
		return n
	}
	for _, c := range n.children {
		if f := find(c, space, local); f != nil {
			return f
		}
	}
	return nil
}

// findText is the text of the first element with the name holding text.
func findText(n *node, space, local string) string {
	if n == nil {
		return ""
	}
	if n.is(space, local) {
		return n.text
	}
	for _, c := range n.children {
		if t := findText(c, space, local); t != "" {
			return t
		}
	}
	return ""
}

// qname names an element or attribute with the usual prefix of its
// namespace (s, a, w, p, rsp, x, f, xml), or {URI} for another namespace.
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

// attrMap maps the attributes (namespace declarations aside) by qname.
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
