package unattend

import (
	"strings"
	"testing"
)

const minimalTemplate = `<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
{{ pass "windowsPE" }}
  <settings pass="oobeSystem">
    <component {{ component "Microsoft-Windows-Shell-Setup" }}>
      <UserAccounts>
        <AdministratorPassword>
          <Value>{{ adminPassword .Password }}</Value>
          <PlainText>false</PlainText>
        </AdministratorPassword>
      </UserAccounts>
      <RegisteredOwner>{{ xml .FullName }}</RegisteredOwner>
    </component>
  </settings>
</unattend>
`

func TestRenderTemplate(t *testing.T) {
	s := validSettings()
	s.FullName = `Tom & "Jerry" <x>`
	s.Architecture = ArchARM64
	out, err := RenderTemplate(minimalTemplate, s)
	if err != nil {
		t.Fatal(err)
	}
	root := parseTree(t, out)
	shell := root.component(PassOOBESystem, "Microsoft-Windows-Shell-Setup")
	if shell == nil {
		t.Fatal("component missing")
	}
	if a, _ := shell.attr("", "processorArchitecture"); a != ArchARM64 {
		t.Errorf("component architecture %q", a)
	}
	if got := shell.childText("RegisteredOwner"); got != s.FullName {
		t.Errorf("RegisteredOwner %q", got)
	}
	if got := decodePassword(t, shell.path("UserAccounts", "AdministratorPassword", "Value").Text, AdministratorPasswordSuffix); got != s.Password {
		t.Errorf("password %q", got)
	}
	if root.component(PassWindowsPE, "Microsoft-Windows-Setup") == nil {
		t.Error("default windowsPE pass missing")
	}
}

func TestTemplateErrors(t *testing.T) {
	cases := []struct {
		name    string
		text    string
		atParse bool
		want    []string
	}{
		{"parse error has line", "<unattend>\n{{ if }}\n</unattend>", true, []string{"unattend_template:2:", "missing value for if"}},
		{"unknown function", "<unattend>\n\n{{ nosuch .X }}</unattend>", true, []string{"unattend_template:3:", `function "nosuch" not defined`}},
		{"unknown field at execution", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n{{ .NoSuchField }}\n</unattend>", false,
			[]string{"unattend_template:2:", "NoSuchField"}},
		{"unknown pass at execution", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n\n\n{{ pass \"auditUser\" }}</unattend>", false,
			[]string{"unattend_template:4:", `pass "auditUser"`}},
		{"not well-formed", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<a>{{ .Password }}</b>\n</unattend>", false,
			[]string{"not a usable answer file", "line 2"}},
		{"unescaped value breaks XML", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<a>{{ .FullName }}</a>\n</unattend>", false,
			[]string{"not a usable answer file", "line 2"}},
		{"wrong root", "<unattended/>", false, []string{"root element must be <unattend"}},
		{"root without namespace", "<unattend/>", false, []string{"root element must be"}},
		{"two roots", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"/>\n<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"/>", false, []string{"line 2", "more than one root"}},
		{"undeclared wcm prefix", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n{{ pass \"oobeSystem\" }}\n</unattend>", false, []string{"undeclared namespace prefix \"wcm\""}},
		{"bad pass", "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n  <settings pass=\"windowsPe\"/>\n</unattend>", false, []string{"line 2", `pass="windowsPe"`, "oobeSystem"}},
		{"empty output", "{{/* nothing */}}", false, []string{"no root element"}},
		{"doctype", "<!DOCTYPE x><unattend xmlns=\"urn:schemas-microsoft-com:unattend\"/>", false, []string{"DOCTYPE"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSettings()
			s.FullName = "a & b"
			tmpl, err := ParseTemplate(FieldTemplate, c.text)
			if c.atParse {
				if err == nil {
					t.Fatal("parse succeeded")
				}
			} else {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				_, err = tmpl.Execute(s)
				if err == nil {
					t.Fatal("execute succeeded")
				}
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), s.Password) {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestTemplateValidatesSettings(t *testing.T) {
	tmpl, err := ParseTemplate("t", minimalTemplate)
	if err != nil {
		t.Fatal(err)
	}
	s := validSettings()
	s.Password = ""
	if _, err := tmpl.Execute(s); err == nil || !strings.Contains(err.Error(), "winrm_password") {
		t.Errorf("Execute with invalid settings: %v", err)
	}
}

func TestTemplateConcurrentExecute(t *testing.T) {
	tmpl, err := ParseTemplate("t", minimalTemplate)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	for _, arch := range []string{ArchAMD64, ArchARM64, ArchX86, ArchAMD64, ArchARM64} {
		go func() {
			s := validSettings()
			s.Architecture = arch
			out, err := tmpl.Execute(s)
			if err != nil {
				done <- err.Error()
				return
			}
			if !strings.Contains(string(out), `processorArchitecture="`+arch+`"`) {
				done <- "wrong architecture for " + arch
				return
			}
			done <- ""
		}()
	}
	for range 5 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
