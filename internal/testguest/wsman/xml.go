package wsman

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespace URIs. Requests are matched on these, never on prefixes.
const (
	nsSOAP      = "http://www.w3.org/2003/05/soap-envelope"
	nsAddr      = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSMan     = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsMSWSMan   = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	nsShell     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsTransfer  = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsEventing  = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
	nsEnum      = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
	nsWSManFlt  = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
	nsXML       = "http://www.w3.org/XML/1998/namespace"
	anonymous   = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	cmdResource = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
)

// node is a parsed XML element with resolved namespace URIs.
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

func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.is(space, local) {
			return c
		}
	}
	return nil
}

func (n *node) all(space, local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.children {
		if c.is(space, local) {
			out = append(out, c)
		}
	}
	return out
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

// mustUnderstand reports s:mustUnderstand="true" (masterzen sends the
// attribute unqualified; both forms count).
func (n *node) mustUnderstand() bool {
	for _, a := range n.attrs {
		if a.Name.Local == "mustUnderstand" && (a.Name.Space == nsSOAP || a.Name.Space == "") {
			v := strings.TrimSpace(strings.ToLower(a.Value))
			return v == "true" || v == "1"
		}
	}
	return false
}

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
