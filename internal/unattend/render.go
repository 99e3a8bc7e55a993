package unattend

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
)

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// Render validates s (after WithDefaults) and returns the default answer file.
// Validation problems are returned joined (see Settings.Validate); the output
// is always well-formed XML.
func Render(s Settings) ([]byte, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	body, err := xml.MarshalIndent(build(s), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering the answer file: %w", err)
	}
	out := make([]byte, 0, len(xmlHeader)+len(body)+1)
	out = append(out, xmlHeader...)
	out = append(out, body...)
	out = append(out, '\n')
	if err := CheckAnswerFile(out); err != nil {
		// Cannot happen for validated settings; guards the model itself.
		return nil, fmt.Errorf("internal error: rendered answer file is invalid: %w", err)
	}
	return out, nil
}

// Template is a parsed user answer-file template (Go text/template). It is
// executed with the defaulted Settings as its data, so {{.ImageName}},
// {{.Password}}, {{.Firmware}} ... and the Settings methods
// {{.FirstLogonCommands}}, {{.DriverPaths}}, {{.WindowsPECommands}},
// {{.SpecializeCommands}} and {{.IsBuiltinAdministrator}} are available,
// together with these functions:
//
//	xml STRING            escape STRING for XML text or attribute values
//	adminPassword STRING  EncodeAdministratorPassword (use with PlainText false)
//	userPassword STRING   EncodeUserPassword (local accounts, AutoLogon)
//	component NAME        the attributes of a <component> element:
//	                      name="NAME" processorArchitecture="<.Architecture>"
//	                      publicKeyToken=... language=... versionScope=...
//	pass NAME             winbake's default <settings pass="NAME"> element for
//	                      windowsPE, specialize or oobeSystem, as XML; it uses
//	                      the wcm prefix, so declare xmlns:wcm on the root
//	layout                the Layout (.Partitions, .WindowsPartition)
//	winrmCommands         .WinRMCommands (HTTP, or HTTPS with the build's
//	                      certificate from the answer medium)
//	namespace             the answer-file namespace URI
//	wcmNamespace          the wcm namespace URI
//
// Values inserted with {{.Field}} are not escaped: pipe free text through
// xml. The output must pass CheckAnswerFile.
type Template struct {
	name string
	tmpl *template.Template
}

// templateFuncs returns the function map; the settings-dependent functions
// read *cur, which Execute sets before running the template.
func templateFuncs(cur *Settings) template.FuncMap {
	return template.FuncMap{
		"xml":           xmlEscape,
		"adminPassword": EncodeAdministratorPassword,
		"userPassword":  EncodeUserPassword,
		"winrmCommands": func() []Command { return cur.WinRMCommands() },
		"namespace":     func() string { return Namespace },
		"wcmNamespace":  func() string { return WCMNamespace },
		"component": func(name string) string {
			c := newComponent(name, cur.Architecture)
			return fmt.Sprintf(`name="%s" processorArchitecture="%s" publicKeyToken="%s" language="%s" versionScope="%s"`,
				xmlEscape(c.Name), xmlEscape(c.ProcessorArchitecture), c.PublicKeyToken, c.Language, c.VersionScope)
		},
		"pass": func(name string) (string, error) {
			switch name {
			case PassWindowsPE, PassSpecialize, PassOOBESystem:
			default:
				return "", fmt.Errorf("pass %q: winbake has default settings for %q, %q and %q only", name, PassWindowsPE, PassSpecialize, PassOOBESystem)
			}
			b, err := xml.MarshalIndent(buildPass(*cur, name), "  ", "  ")
			return string(b), err
		},
		"layout": func() Layout { return LayoutFor(cur.Firmware, cur.RecoveryPartitionMB) },
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ParseTemplate parses a user template. name is used in error messages
// (typically the file name); parse errors carry the line number.
func ParseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(&Settings{})).Parse(text)
	if err != nil {
		return nil, err
	}
	return &Template{name: name, tmpl: t}, nil
}

// Name is the name the template was parsed with.
func (t *Template) Name() string { return t.name }

// Execute validates s (after WithDefaults), runs the template and checks the
// output with CheckAnswerFile. Execution errors carry the template's name and
// line ("template: NAME:LINE:COL: executing ...").
func (t *Template) Execute(s Settings) ([]byte, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cur := s
	tmpl, err := t.tmpl.Clone()
	if err != nil {
		return nil, err
	}
	tmpl.Funcs(templateFuncs(&cur))
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, s); err != nil {
		return nil, err
	}
	if err := CheckAnswerFile(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("template %s: output is not a usable answer file: %w", t.name, err)
	}
	return buf.Bytes(), nil
}

// RenderTemplate parses text (named "unattend_template") and executes it
// with s; see Template.
func RenderTemplate(text string, s Settings) ([]byte, error) {
	t, err := ParseTemplate(FieldTemplate, text)
	if err != nil {
		return nil, err
	}
	return t.Execute(s)
}

// CheckAnswerFile checks that b is well-formed XML with a single root element
// <unattend> in the urn:schemas-microsoft-com:unattend namespace, that every
// namespace prefix is declared, and that every <settings> element names a
// known configuration pass. Errors carry the line number.
func CheckAnswerFile(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, roots := 0, 0
	var scopes []map[string]bool // declared namespace URIs per open element
	declared := func(uri string) bool {
		for _, sc := range scopes {
			if sc[uri] {
				return true
			}
		}
		return false
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		line, _ := d.InputPos()
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("line %d: %s", se.Line, se.Msg)
			}
			return fmt.Errorf("line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			sc := map[string]bool{}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					sc[a.Value] = true
				}
			}
			scopes = append(scopes, sc)
			if t.Name.Space != "" && !declared(t.Name.Space) {
				return fmt.Errorf("line %d: element <%s> uses the undeclared namespace prefix %q", line, t.Name.Local, t.Name.Space)
			}
			for _, a := range t.Attr {
				if a.Name.Space == "" || a.Name.Space == "xmlns" || a.Name.Space == "xml" {
					continue
				}
				if !declared(a.Name.Space) {
					return fmt.Errorf("line %d: attribute %s:%s uses the undeclared namespace prefix %q", line, a.Name.Space, a.Name.Local, a.Name.Space)
				}
			}
			if depth == 0 {
				roots++
				if roots > 1 {
					return fmt.Errorf("line %d: more than one root element", line)
				}
				if t.Name.Local != "unattend" || t.Name.Space != Namespace {
					return fmt.Errorf("line %d: the root element must be <unattend xmlns=%q>, found <%s> in namespace %q", line, Namespace, t.Name.Local, t.Name.Space)
				}
			}
			if t.Name.Local == "settings" && t.Name.Space == Namespace && depth == 1 {
				pass := attr(t, "pass")
				if !slices.Contains(Passes, pass) {
					return fmt.Errorf("line %d: <settings pass=%q> is not a configuration pass: accepted are %s", line, pass, strings.Join(Passes, ", "))
				}
			}
			depth++
		case xml.EndElement:
			depth--
			scopes = scopes[:len(scopes)-1]
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("line %d: text outside the root element", line)
			}
		case xml.Directive:
			return fmt.Errorf("line %d: DOCTYPE and other directives are not allowed in an answer file", line)
		}
	}
	if roots == 0 {
		return errors.New("no root element: expected <unattend xmlns=\"" + Namespace + "\">")
	}
	return nil
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
