package soapxml

import (
	"strings"
	"testing"
)

const doc = `<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="` + NSSOAP + `" xmlns:rsp="` + NSShell + `" xmlns:w="` + NSWSMan + `">
  <s:Header>
    <w:Action s:mustUnderstand="true">act</w:Action>
    <w:Selector Name="ShellId">A</w:Selector>
    <w:Selector Name="Other">B</w:Selector>
  </s:Header>
  <s:Body>
    <rsp:CommandLine><rsp:Command><![CDATA[echo <hi> & bye]]></rsp:Command><rsp:Arguments>x</rsp:Arguments>tail</rsp:CommandLine>
  </s:Body>
</s:Envelope>
`

func TestParse(t *testing.T) {
	root, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !root.Is(NSSOAP, "Envelope") || len(root.Children) != 2 {
		t.Fatalf("root %v with %d children", root.Name, len(root.Children))
	}
	h := root.Child(NSSOAP, "Header")
	if a := h.Child(NSWSMan, "Action"); !a.MustUnderstand() || a.Text != "act" {
		t.Errorf("Action %q mustUnderstand=%v", a.Text, a.MustUnderstand())
	}
	sel := h.All(NSWSMan, "Selector")
	if len(sel) != 2 {
		t.Fatalf("%d selectors", len(sel))
	}
	if v, ok := sel[1].Attr("", "Name"); !ok || v != "Other" {
		t.Errorf("Name=%q %v", v, ok)
	}
	if _, ok := sel[1].Attr(NSSOAP, "Name"); ok {
		t.Error("Attr matched a different namespace")
	}
	if got := root.FindText(NSShell, "Command"); got != "echo <hi> & bye" {
		t.Errorf("CDATA text %q", got)
	}
	cl := root.Find(NSShell, "CommandLine")
	if cl == nil || cl.Text != "tail" || len(cl.Children) != 2 {
		t.Fatalf("CommandLine %+v", cl)
	}
	if root.Find(NSShell, "Missing") != nil || root.FindText(NSShell, "Missing") != "" {
		t.Error("found a missing element")
	}
	// Lookups on nil chain.
	var n *Node
	if n.Is(NSSOAP, "Body") || n.Child(NSSOAP, "Body") != nil || n.All(NSSOAP, "Body") != nil || n.Find(NSSOAP, "Body") != nil || n.FindText(NSSOAP, "Body") != "" || n.MustUnderstand() {
		t.Error("nil Node lookups")
	}
	if _, ok := n.Attr("", "x"); ok {
		t.Error("nil Node Attr")
	}
	if root.Child(NSSOAP, "Nope").Child(NSShell, "Receive") != nil {
		t.Error("chained lookup on a missing element")
	}
}

func TestFindTextSkipsEmpty(t *testing.T) {
	root, err := Parse([]byte(`<r xmlns="u"><a><b/></a><b>x</b></r>`))
	if err != nil {
		t.Fatal(err)
	}
	if got := root.FindText("u", "b"); got != "x" {
		t.Errorf("FindText %q, want x", got)
	}
	if got := root.Find("u", "b"); got == nil || got.Text != "" {
		t.Errorf("Find %+v, want the empty first b", got)
	}
}

func TestMustUnderstand(t *testing.T) {
	for _, tc := range []struct {
		attr string
		want bool
	}{
		{`mustUnderstand="true"`, true},
		{`s:mustUnderstand=" TRUE "`, true},
		{`s:mustUnderstand="1"`, true},
		{`s:mustUnderstand="false"`, false},
		{`o:mustUnderstand="true"`, false},
		{``, false},
	} {
		root, err := Parse([]byte(`<h xmlns:s="` + NSSOAP + `" xmlns:o="urn:other" ` + tc.attr + `/>`))
		if err != nil {
			t.Fatal(err)
		}
		if got := root.MustUnderstand(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.attr, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{``, "no root element"},
		{`   `, "no root element"},
		{`<a/><b/>`, "more than one root element"},
		{`<a/>junk`, "text outside the root element"},
		{`junk<a/>`, "text outside the root element"},
		{`<!DOCTYPE a><a/>`, "unexpected XML directive"},
		{`<a>`, "unexpected EOF"},
		{`<a></b>`, "element <a> closed by </b>"},
		{`<p:a/>`, ""},
	} {
		_, err := Parse([]byte(tc.doc))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.doc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestParseSkipsCommentsAndPIs(t *testing.T) {
	root, err := Parse([]byte("<?xml version=\"1.0\"?>\n<!-- c --><a>x<!-- y -->z<?pi d?></a>\n<!-- after -->\n"))
	if err != nil {
		t.Fatal(err)
	}
	if root.Text != "xz" {
		t.Errorf("text %q", root.Text)
	}
}

func TestMixedContent(t *testing.T) {
	// Text on either side of children, deeper than the first few levels
	// (the per-element text buffers are reallocated as the stack grows).
	root, err := Parse([]byte(`<a>1<b>2<c>3<d>4<e>5<f>6</f>7</e>8</d>9</c>10</b>11</a>`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"111", "210", "39", "48", "57", "6"}
	for i, n := 0, root; n != nil; i++ {
		if n.Text != want[i] {
			t.Errorf("%s: text %q, want %q", n.Name.Local, n.Text, want[i])
		}
		if len(n.Children) == 0 {
			break
		}
		n = n.Children[0]
	}
}
