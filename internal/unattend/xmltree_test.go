package unattend

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"unicode/utf16"
)

// node is a minimal DOM used by the tests to inspect rendered answer files
// independently of the rendering structs.
type node struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*node
	Text     string
	Line     int
	Parent   *node
}

func parseTree(t testing.TB, b []byte) *node {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parsing XML: %v", err)
		}
		line, _ := d.InputPos()
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &node{Name: tk.Name, Attr: tk.Copy().Attr, Line: line}
			if len(stack) > 0 {
				n.Parent = stack[len(stack)-1]
				n.Parent.Children = append(n.Parent.Children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tk)
			}
		}
	}
	if root == nil {
		t.Fatal("no root element")
	}
	return root
}

func (n *node) attr(space, local string) (string, bool) {
	for _, a := range n.Attr {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// child returns the first direct child with the local name, or nil.
func (n *node) child(local string) *node {
	for _, c := range n.Children {
		if c.Name.Local == local {
			return c
		}
	}
	return nil
}

// path follows direct children by local name.
func (n *node) path(locals ...string) *node {
	cur := n
	for _, l := range locals {
		if cur == nil {
			return nil
		}
		cur = cur.child(l)
	}
	return cur
}

// all returns every descendant (depth-first, document order) with the local
// name.
func (n *node) all(local string) []*node {
	var out []*node
	var walk func(*node)
	walk = func(x *node) {
		for _, c := range x.Children {
			if c.Name.Local == local {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(n)
	return out
}

func (n *node) childText(local string) string {
	if c := n.child(local); c != nil {
		return c.Text
	}
	return ""
}

// component returns the component with the name in the pass, or nil.
func (n *node) component(pass, name string) *node {
	for _, s := range n.Children {
		if p, _ := s.attr("", "pass"); s.Name.Local != "settings" || p != pass {
			continue
		}
		for _, c := range s.Children {
			if v, _ := c.attr("", "name"); v == name {
				return c
			}
		}
	}
	return nil
}

// decodePassword reverses EncodePassword and checks the suffix.
func decodePassword(t testing.TB, value, suffix string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		t.Fatalf("password value %q is not base64: %v", value, err)
	}
	if len(b)%2 != 0 {
		t.Fatalf("password value decodes to %d bytes, not UTF-16", len(b))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	s := string(utf16.Decode(u))
	if !strings.HasSuffix(s, suffix) {
		t.Fatalf("decoded password does not end with %q", suffix)
	}
	return strings.TrimSuffix(s, suffix)
}
