// Package soapxml is the XML element tree that winbake's test-only WinRM
// server (package wsman) reads requests with and its capture replay
// (package replay) compares responses with: a SOAP envelope parsed into
// Nodes whose names carry resolved namespace URIs, so that elements are
// matched by namespace, never by prefix.
//
// Parse accepts exactly one document: one root element, CDATA sections as
// ordinary text, whitespace only outside the root. Directives (DOCTYPE and
// the like) and non-space text outside the root are errors. Comments and
// processing instructions are skipped.
//
// The Node methods are nil-safe, so lookups chain:
// root.Child(NSSOAP, "Body").Child(NSShell, "Receive") is nil when either
// element is missing.
package soapxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespace URIs of the WS-Management shell protocol (WinRM's WS-Man over
// SOAP 1.2), as Windows and its clients use them.
const (
	// NSSOAP is the SOAP 1.2 envelope (prefix s or env).
	NSSOAP = "http://www.w3.org/2003/05/soap-envelope"
	// NSAddressing is WS-Addressing (a).
	NSAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	// NSWSMan is DMTF WS-Management (w).
	NSWSMan = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	// NSMSWSMan is Microsoft's WS-Management extensions (p).
	NSMSWSMan = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	// NSShell is the Windows remote shell (rsp).
	NSShell = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	// NSTransfer is WS-Transfer (x).
	NSTransfer = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	// NSEventing is WS-Eventing.
	NSEventing = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
	// NSEnumeration is WS-Enumeration.
	NSEnumeration = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
	// NSWSManFault is the WSManFault detail of faults (f).
	NSWSManFault = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
	// NSXML is the xml prefix's namespace (xml:lang).
	NSXML = "http://www.w3.org/XML/1998/namespace"
)

// Node is an XML element with resolved namespace URIs.
type Node struct {
	// Name is the element name; Name.Space is the namespace URI.
	Name xml.Name
	// Attrs are the attributes as written, namespace declarations
	// included; Name.Space of a prefixed attribute is its namespace URI
	// ("xmlns" for a prefix declaration).
	Attrs []xml.Attr
	// Children are the child elements in document order.
	Children []*Node
	// Text is the element's character data (CDATA included) with the
	// child elements' left out, untrimmed.
	Text string
}

// Parse parses one XML document into its root element.
func Parse(data []byte) (*Node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var root *Node
	var stack []*Node
	var text []*strings.Builder // one per open element; pointers, as a Builder must not be copied once written
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
			n := &Node{Name: t.Name, Attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
			text = append(text, &strings.Builder{})
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.Text = text[len(text)-1].String()
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

// Is reports whether n is the element with the namespace URI and local
// name (false for nil).
func (n *Node) Is(space, local string) bool {
	return n != nil && n.Name.Space == space && n.Name.Local == local
}

// Child returns n's first child element with the name, or nil.
func (n *Node) Child(space, local string) *Node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Is(space, local) {
			return c
		}
	}
	return nil
}

// All returns n's child elements with the name, in order.
func (n *Node) All(space, local string) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	for _, c := range n.Children {
		if c.Is(space, local) {
			out = append(out, c)
		}
	}
	return out
}

// Attr returns the attribute with the given namespace URI ("" for an
// unqualified attribute) and local name.
func (n *Node) Attr(space, local string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.Attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// Find returns the first element with the name, depth first, n included,
// or nil.
func (n *Node) Find(space, local string) *Node {
	if n == nil {
		return nil
	}
	if n.Is(space, local) {
		return n
	}
	for _, c := range n.Children {
		if f := c.Find(space, local); f != nil {
			return f
		}
	}
	return nil
}

// FindText returns the first non-empty text of an element with the name,
// depth first, n included, or "". A match's own descendants are not
// searched.
func (n *Node) FindText(space, local string) string {
	if n == nil {
		return ""
	}
	if n.Is(space, local) {
		return n.Text
	}
	for _, c := range n.Children {
		if t := c.FindText(space, local); t != "" {
			return t
		}
	}
	return ""
}

// MustUnderstand reports whether the header element n carries
// mustUnderstand="true" (or "1"), qualified with NSSOAP or unqualified
// (masterzen's WinRM client sends it unqualified; Windows accepts both).
func (n *Node) MustUnderstand() bool {
	if n == nil {
		return false
	}
	for _, a := range n.Attrs {
		if a.Name.Local == "mustUnderstand" && (a.Name.Space == NSSOAP || a.Name.Space == "") {
			v := strings.TrimSpace(strings.ToLower(a.Value))
			return v == "true" || v == "1"
		}
	}
	return false
}
