package winsim

import (
	"crypto/sha1" //nolint:gosec // Windows names certificates by their SHA-1 thumbprint.
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// WinRMConfig is the WinRM service's configuration and what decides who
// reaches it: the listeners (winrm/config/Listener), the service settings
// (winrm/config/service AllowUnencrypted, winrm/config/service/auth), the
// service's start type, the inbound firewall rules, the network's
// firewall profile and the machine's certificate store (LocalMachine\My,
// whose certificates HTTPS listeners name by thumbprint).
//
// It is changed by the commands that configure WinRM on Windows, as the
// stand-in runs them: `winrm` (winrm.cmd), `netsh advfirewall firewall`,
// `certutil -importpfx`, PowerShell's Cert: drive, cloudbase-init's
// ConfigWinRMListenerPlugin, through the Run* functions below, and the
// stand-in's WinRM server serves what Endpoints says. The forms winbake
// and cloudbase-init use are modelled; anything else is an error of type
// *NotModelled, which callers report.
//
// Settings and their defaults are Microsoft's "WinRM Service Default
// Configuration Settings" (MicrosoftDocs/win32
// desktop-src/WinRM/installation-and-configuration-for-windows-remote-management.md):
// AllowUnencrypted false; Basic false, Kerberos true, Negotiate true,
// Certificate false, CredSSP false, CbtHardeningLevel Relaxed; DefaultPorts
// HTTP 5985, HTTPS 5986. The stand-in's fresh install has no listener and
// no WinRM firewall rule until `winrm quickconfig` (Windows Server has an
// HTTP listener from the start; the build runs quickconfig either way).
type WinRMConfig struct {
	// StartMode is the service's start type: "demand", "auto",
	// "delayed-auto" or "disabled"; Started says it was started since.
	StartMode string `json:"start_mode"`
	Started   bool   `json:"started"`
	// AllowUnencrypted is winrm/config/service AllowUnencrypted.
	AllowUnencrypted bool      `json:"allow_unencrypted"`
	Auth             WinRMAuth `json:"auth"`
	// Listeners are winrm/config/Listener instances.
	Listeners []WinRMListener `json:"listeners"`
	// FirewallRules are the inbound rules that concern the machine's
	// ports.
	FirewallRules []FirewallRule `json:"firewall_rules"`
	// NetworkCategory is the network's profile: "Public" (Windows' choice
	// for a network it does not know), "Private" or
	// "DomainAuthenticated".
	NetworkCategory string `json:"network_category"`
	// Certificates are the machine's personal store, LocalMachine\My.
	Certificates []StoredCertificate `json:"certificates"`
}

// WinRMAuth is winrm/config/service/auth.
type WinRMAuth struct {
	Basic             bool   `json:"basic"`
	Kerberos          bool   `json:"kerberos"`
	Negotiate         bool   `json:"negotiate"`
	Certificate       bool   `json:"certificate"`
	CredSSP           bool   `json:"credssp"`
	CbtHardeningLevel string `json:"cbt_hardening_level"`
}

// WinRMListener is one winrm/config/Listener.
type WinRMListener struct {
	// Transport is "HTTP" or "HTTPS"; Address "*" (any address).
	Transport string `json:"transport"`
	Address   string `json:"address"`
	Port      int    `json:"port"`
	Enabled   bool   `json:"enabled"`
	// CertificateThumbprint names the HTTPS listener's certificate in
	// LocalMachine\My.
	CertificateThumbprint string `json:"certificate_thumbprint,omitempty"`
}

// FirewallRule is one inbound Windows Firewall rule for a local TCP port.
type FirewallRule struct {
	Name   string `json:"name"`
	Port   int    `json:"port"`
	Allow  bool   `json:"allow"`
	Enable bool   `json:"enabled"`
	// Profiles are "domain", "private", "public"; all three for "any".
	Profiles []string `json:"profiles"`
}

// StoredCertificate is a certificate of LocalMachine\My with its private
// key (PKCS#8).
type StoredCertificate struct {
	Thumbprint string `json:"thumbprint"`
	Subject    string `json:"subject"`
	DER        []byte `json:"der"`
	Key        []byte `json:"key"`
	Exportable bool   `json:"exportable"`
}

// NewWinRMConfig is the stand-in's fresh install: the service's default
// settings, start type "demand" (no listener, so it would not serve
// anything), a Public network.
func NewWinRMConfig() WinRMConfig {
	return WinRMConfig{
		StartMode:       "demand",
		Auth:            WinRMAuth{Kerberos: true, Negotiate: true, CbtHardeningLevel: "Relaxed"},
		NetworkCategory: "Public",
	}
}

// NotModelled is a command or a form of it the stand-in does not model.
type NotModelled struct{ What string }

func (e *NotModelled) Error() string { return e.What + " is not modelled" }

func notModelled(format string, args ...any) error {
	return &NotModelled{What: fmt.Sprintf(format, args...)}
}

// Default ports (DefaultPorts of the WinRM service).
const (
	winrmHTTPPort  = 5985
	winrmHTTPSPort = 5986
)

// listener returns the listener of transport on address, or nil.
func (c *WinRMConfig) listener(transport, address string) *WinRMListener {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if strings.EqualFold(l.Transport, transport) && l.Address == address {
			return l
		}
	}
	return nil
}

// Certificate returns the certificate with that thumbprint in
// LocalMachine\My, or nil.
func (c *WinRMConfig) Certificate(thumbprint string) *StoredCertificate {
	for i := range c.Certificates {
		if strings.EqualFold(c.Certificates[i].Thumbprint, thumbprint) {
			return &c.Certificates[i]
		}
	}
	return nil
}

// RulesNamed returns the firewall rules named name (netsh matches names
// case-insensitively).
func (c *WinRMConfig) RulesNamed(name string) []FirewallRule {
	var out []FirewallRule
	for _, r := range c.FirewallRules {
		if strings.EqualFold(r.Name, name) {
			out = append(out, r)
		}
	}
	return out
}

// portOpen reports whether an enabled inbound allow rule opens TCP port
// for the network's profile.
func (c *WinRMConfig) portOpen(port int) bool {
	profile := profileOf(c.NetworkCategory)
	for _, r := range c.FirewallRules {
		if r.Port == port && r.Allow && r.Enable && slices.Contains(r.Profiles, profile) {
			return true
		}
	}
	return false
}

// profileOf maps a network category to its firewall profile.
func profileOf(category string) string {
	switch strings.ToLower(category) {
	case "private":
		return "private"
	case "domainauthenticated", "domain":
		return "domain"
	}
	return "public"
}

// --- what the service serves ----------------------------------------------------

// WinRMEndpoint is a listener the service serves and the firewall lets
// through.
type WinRMEndpoint struct {
	Transport string
	Port      int
	// Certificate is the HTTPS listener's certificate and key.
	Certificate *tls.Certificate
}

// Endpoints returns what the WinRM service serves once started: its
// reachable listeners, the authentication schemes (Basic; Negotiate, whose
// NTLM the stand-in speaks) and whether unencrypted messages over HTTP are
// refused. Listeners that are disabled, blocked by the firewall or whose
// certificate is not in the store are left out, each with the reason in
// notes.
func (c *WinRMConfig) Endpoints() (eps []WinRMEndpoint, auth wsman.AuthMethods, rejectUnencrypted bool, notes []string) {
	if c.Auth.Basic {
		auth |= wsman.AuthBasic
	}
	if c.Auth.Negotiate {
		auth |= wsman.AuthNTLM
	}
	for _, l := range c.Listeners {
		what := fmt.Sprintf("listener %s on port %d", l.Transport, l.Port)
		switch {
		case !l.Enabled:
			notes = append(notes, what+" is disabled")
			continue
		case !c.portOpen(l.Port):
			notes = append(notes, fmt.Sprintf("%s: the firewall blocks TCP %d on the %s profile", what, l.Port, profileOf(c.NetworkCategory)))
			continue
		}
		ep := WinRMEndpoint{Transport: strings.ToUpper(l.Transport), Port: l.Port}
		if ep.Transport == "HTTPS" {
			sc := c.Certificate(l.CertificateThumbprint)
			if sc == nil {
				notes = append(notes, fmt.Sprintf("%s: its certificate %s is not in LocalMachine\\My", what, l.CertificateThumbprint))
				continue
			}
			key, err := x509.ParsePKCS8PrivateKey(sc.Key)
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s: the key of certificate %s: %v", what, sc.Thumbprint, err))
				continue
			}
			ep.Certificate = &tls.Certificate{Certificate: [][]byte{sc.DER}, PrivateKey: key}
		}
		eps = append(eps, ep)
	}
	return eps, auth, !c.AllowUnencrypted, notes
}

// --- winrm.cmd --------------------------------------------------------------------

// RunWinrm is winrm.cmd (winrm.vbs) with the verbs winbake and its users
// use: quickconfig (qc) -quiet/-q; set (s) on winrm/config/service and
// winrm/config/service/auth with @{Name="value";...}; create (c) and
// delete on winrm/config/Listener?Address=*+Transport=HTTP|HTTPS. The
// output of set repeats the changed settings; create prints
// ResourceCreated, as winrm does.
func (c *WinRMConfig) RunWinrm(args []string, stdout io.Writer) (uint32, error) {
	if len(args) == 0 {
		return 0, notModelled("winrm without arguments")
	}
	verb := strings.ToLower(args[0])
	switch verb {
	case "quickconfig", "qc":
		for _, a := range args[1:] {
			switch strings.ToLower(a) {
			case "-quiet", "-q", "/quiet", "/q":
			default:
				return 0, notModelled("winrm quickconfig %s", a)
			}
		}
		c.quickconfig(stdout)
		return 0, nil
	case "set", "s", "create", "c", "delete":
	default:
		return 0, notModelled("winrm %s", args[0])
	}
	if len(args) < 2 {
		return 0, notModelled("winrm %s without a resource", verb)
	}
	resource := strings.Trim(args[1], `'"`)
	var values map[string]string
	if verb != "delete" {
		if len(args) != 3 {
			return 0, notModelled("winrm %s %s with %d value arguments", verb, resource, len(args)-2)
		}
		var err error
		if values, err = parseHashtable(args[2]); err != nil {
			return 0, err
		}
	} else if len(args) != 2 {
		return 0, notModelled("winrm delete with %d arguments", len(args))
	}
	lower := strings.ToLower(resource)
	switch {
	case (verb == "set" || verb == "s") && (lower == "winrm/config/service" || lower == "winrm/config/service/auth"):
		return 0, c.set(lower, values, stdout)
	case strings.HasPrefix(lower, "winrm/config/listener?"):
		transport, address, err := listenerSelector(resource)
		if err != nil {
			return 0, err
		}
		if verb == "delete" {
			return 0, c.deleteListener(transport, address)
		}
		if verb == "create" || verb == "c" {
			return 0, c.createListener(transport, address, values, stdout)
		}
	}
	return 0, notModelled("winrm %s %s", verb, resource)
}

// quickconfig is what `winrm quickconfig` does ("Installation and
// configuration for Windows Remote Management"): the service started with
// start type delayed auto start, an HTTP listener on any address, and a
// firewall exception for the current profile.
func (c *WinRMConfig) quickconfig(stdout io.Writer) {
	var lines []string
	if c.StartMode != "auto" && c.StartMode != "delayed-auto" {
		c.StartMode = "delayed-auto"
		lines = append(lines, "WinRM service type changed to delayed auto start.")
	}
	if !c.Started {
		c.Started = true
		lines = append(lines, "WinRM service started.")
	}
	if c.listener("HTTP", "*") == nil {
		c.Listeners = append(c.Listeners, WinRMListener{Transport: "HTTP", Address: "*", Port: winrmHTTPPort, Enabled: true})
		lines = append(lines, "Created a WinRM listener on HTTP://* to accept WS-Man requests to any IP on this machine.")
	}
	const rule = "Windows Remote Management (HTTP-In)"
	profile := profileOf(c.NetworkCategory)
	open := false
	for _, r := range c.RulesNamed(rule) {
		open = open || slices.Contains(r.Profiles, profile)
	}
	if !open {
		c.FirewallRules = append(c.FirewallRules, FirewallRule{Name: rule, Port: winrmHTTPPort, Allow: true, Enable: true, Profiles: []string{profile}})
		lines = append(lines, "WinRM firewall exception enabled.")
	}
	if len(lines) == 0 {
		fmt.Fprint(stdout, "WinRM service is already running on this machine.\r\nWinRM is already set up for remote management on this computer.\r\n")
		return
	}
	fmt.Fprint(stdout, "WinRM has been updated for remote management.\r\n\r\n"+strings.Join(lines, "\r\n")+"\r\n")
}

// parseHashtable reads winrm's @{Name="value";Name2="value2"} (the
// quotes may be gone when a shell took them).
func parseHashtable(arg string) (map[string]string, error) {
	a := strings.TrimSpace(arg)
	if !strings.HasPrefix(a, "@{") || !strings.HasSuffix(a, "}") {
		return nil, notModelled("winrm value %q (only @{Name=\"value\";...} is)", arg)
	}
	out := map[string]string{}
	for _, pair := range strings.Split(a[2:len(a)-1], ";") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, notModelled("winrm value %q", arg)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out, nil
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, notModelled("winrm %s = %q (true or false are)", name, v)
}

// set changes winrm/config/service or winrm/config/service/auth.
func (c *WinRMConfig) set(resource string, values map[string]string, stdout io.Writer) error {
	type field struct {
		b *bool
		s *string
	}
	fields := map[string]field{}
	section := "Service"
	if resource == "winrm/config/service" {
		fields["allowunencrypted"] = field{b: &c.AllowUnencrypted}
	} else {
		section = "Auth"
		fields["basic"] = field{b: &c.Auth.Basic}
		fields["kerberos"] = field{b: &c.Auth.Kerberos}
		fields["negotiate"] = field{b: &c.Auth.Negotiate}
		fields["certificate"] = field{b: &c.Auth.Certificate}
		fields["credssp"] = field{b: &c.Auth.CredSSP}
		fields["cbthardeninglevel"] = field{s: &c.Auth.CbtHardeningLevel}
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	var echo []string
	for _, k := range names {
		f, ok := fields[strings.ToLower(k)]
		if !ok {
			return notModelled("winrm set %s @{%s=...}", resource, k)
		}
		if f.b != nil {
			v, err := parseBool(k, values[k])
			if err != nil {
				return err
			}
			*f.b = v
		} else {
			*f.s = values[k]
		}
		echo = append(echo, fmt.Sprintf("    %s = %s", k, values[k]))
	}
	fmt.Fprintf(stdout, "%s\r\n%s\r\n\r\n", section, strings.Join(echo, "\r\n"))
	return nil
}

// listenerSelector reads Address and Transport from
// winrm/config/Listener?Address=*+Transport=HTTPS.
func listenerSelector(resource string) (transport, address string, err error) {
	_, query, _ := strings.Cut(resource, "?")
	for _, kv := range strings.Split(query, "+") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "address":
			address = v
		case "transport":
			transport = strings.ToUpper(v)
		default:
			return "", "", notModelled("listener selector %q in %s", k, resource)
		}
	}
	if address != "*" || (transport != "HTTP" && transport != "HTTPS") {
		return "", "", notModelled("listener %q (Address=* with Transport HTTP or HTTPS is)", resource)
	}
	return transport, address, nil
}

// createListener adds a listener as `winrm create` does: HTTPS needs the
// CertificateThumbprint of a certificate with its key in LocalMachine\My
// (cloudbase-init creates its listener with Enabled, CertificateThumbPrint
// and URLPrefix only: utils/windows/winrmconfig.py create_listener). The
// port is the service's default port of the transport.
func (c *WinRMConfig) createListener(transport, address string, values map[string]string, stdout io.Writer) error {
	if c.listener(transport, address) != nil {
		return notModelled("winrm create of a listener that exists (Address=%s+Transport=%s)", address, transport)
	}
	l := WinRMListener{Transport: transport, Address: address, Port: winrmHTTPPort, Enabled: true}
	if transport == "HTTPS" {
		l.Port = winrmHTTPSPort
	}
	for k, v := range values {
		switch strings.ToLower(k) {
		case "certificatethumbprint":
			l.CertificateThumbprint = strings.ToUpper(strings.ReplaceAll(v, " ", ""))
		case "enabled":
			b, err := parseBool(k, v)
			if err != nil {
				return err
			}
			l.Enabled = b
		case "urlprefix":
			if v != "wsman" {
				return notModelled("listener URLPrefix %q", v)
			}
		default:
			return notModelled("listener setting %s", k)
		}
	}
	if transport == "HTTPS" {
		if l.CertificateThumbprint == "" {
			return notModelled("an HTTPS listener without CertificateThumbprint")
		}
		if c.Certificate(l.CertificateThumbprint) == nil {
			return notModelled("winrm create of an HTTPS listener whose certificate %s is not in LocalMachine\\My (Windows' error)", l.CertificateThumbprint)
		}
	} else if l.CertificateThumbprint != "" {
		return notModelled("an HTTP listener with a certificate")
	}
	c.Listeners = append(c.Listeners, l)
	fmt.Fprintf(stdout, "ResourceCreated\r\n    Address = http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous\r\n    ReferenceParameters\r\n"+
		"        ResourceURI = http://schemas.microsoft.com/wbem/wsman/1/config/listener\r\n        SelectorSet\r\n"+
		"            Selector: Address = %s, Transport = %s\r\n\r\n", address, transport)
	return nil
}

// deleteListener removes a listener; deleting one that does not exist is
// not modelled (Windows answers a WSManFault whose exit code is not known
// here).
func (c *WinRMConfig) deleteListener(transport, address string) error {
	for i, l := range c.Listeners {
		if strings.EqualFold(l.Transport, transport) && l.Address == address {
			c.Listeners = append(c.Listeners[:i], c.Listeners[i+1:]...)
			return nil
		}
	}
	return notModelled("winrm delete of a listener that does not exist (Address=%s+Transport=%s)", address, transport)
}

// --- netsh advfirewall firewall ----------------------------------------------------

// RunNetsh is `netsh advfirewall firewall` add rule, delete rule and show
// rule by name, for inbound TCP rules on one local port, with netsh's
// messages: "Ok." (exit 0) after add, "Deleted N rule(s)." and "Ok."
// (exit 0) after delete, and "No rules match the specified criteria."
// (exit 1) when delete or show finds no rule of that name.
func (c *WinRMConfig) RunNetsh(args []string, stdout io.Writer) (uint32, error) {
	if len(args) < 4 || !strings.EqualFold(args[0], "advfirewall") || !strings.EqualFold(args[1], "firewall") || !strings.EqualFold(args[3], "rule") {
		return 0, notModelled("netsh %s", strings.Join(args, " "))
	}
	kv := map[string]string{}
	var order []string
	for _, a := range args[4:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return 0, notModelled("netsh advfirewall firewall %s argument %q", args[2], a)
		}
		k = strings.ToLower(k)
		kv[k] = strings.Trim(v, `"`)
		order = append(order, k)
	}
	name, ok := kv["name"]
	if !ok || name == "" {
		return 0, notModelled("netsh advfirewall firewall %s without name=", args[2])
	}
	noMatch := func() (uint32, error) {
		fmt.Fprint(stdout, "\r\nNo rules match the specified criteria.\r\n\r\n")
		return 1, nil
	}
	switch strings.ToLower(args[2]) {
	case "add":
		r := FirewallRule{Name: name, Enable: true}
		for _, k := range order {
			v := kv[k]
			switch k {
			case "name":
			case "dir":
				if !strings.EqualFold(v, "in") {
					return 0, notModelled("netsh rule dir=%s", v)
				}
			case "action":
				if !strings.EqualFold(v, "allow") && !strings.EqualFold(v, "block") {
					return 0, notModelled("netsh rule action=%s", v)
				}
				r.Allow = strings.EqualFold(v, "allow")
			case "protocol":
				if !strings.EqualFold(v, "tcp") {
					return 0, notModelled("netsh rule protocol=%s", v)
				}
			case "localport":
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 65535 {
					return 0, notModelled("netsh rule localport=%s (one port is)", v)
				}
				r.Port = n
			case "profile":
				for _, p := range strings.Split(strings.ToLower(v), ",") {
					switch p {
					case "any":
						r.Profiles = []string{"domain", "private", "public"}
					case "domain", "private", "public":
						r.Profiles = append(r.Profiles, p)
					default:
						return 0, notModelled("netsh rule profile=%s", v)
					}
				}
			case "enable":
				r.Enable = strings.EqualFold(v, "yes")
			default:
				return 0, notModelled("netsh rule %s=", k)
			}
		}
		if r.Port == 0 || kv["protocol"] == "" || kv["action"] == "" {
			return 0, notModelled("netsh add rule without protocol=TCP, localport= and action=")
		}
		if r.Profiles == nil {
			r.Profiles = []string{"domain", "private", "public"} // profile=any is netsh's default
		}
		c.FirewallRules = append(c.FirewallRules, r)
		fmt.Fprint(stdout, "Ok.\r\n\r\n")
		return 0, nil
	case "delete":
		if len(kv) != 1 {
			return 0, notModelled("netsh delete rule with criteria besides name=")
		}
		n := 0
		kept := c.FirewallRules[:0]
		for _, r := range c.FirewallRules {
			if strings.EqualFold(r.Name, name) {
				n++
				continue
			}
			kept = append(kept, r)
		}
		c.FirewallRules = kept
		if n == 0 {
			return noMatch()
		}
		fmt.Fprintf(stdout, "\r\nDeleted %d rule(s).\r\nOk.\r\n\r\n", n)
		return 0, nil
	case "show":
		if len(kv) != 1 {
			return 0, notModelled("netsh show rule with criteria besides name=")
		}
		rules := c.RulesNamed(name)
		if len(rules) == 0 {
			return noMatch()
		}
		for _, r := range rules {
			yes := func(b bool) string {
				if b {
					return "Yes"
				}
				return "No"
			}
			action := "Block"
			if r.Allow {
				action = "Allow"
			}
			var profiles []string
			for _, p := range r.Profiles {
				profiles = append(profiles, strings.ToUpper(p[:1])+p[1:])
			}
			fmt.Fprintf(stdout, "\r\nRule Name:                            %s\r\n%s\r\nEnabled:                              %s\r\nDirection:                            In\r\n"+
				"Profiles:                             %s\r\nLocalPort:                            %d\r\nProtocol:                             TCP\r\nAction:                               %s\r\n",
				r.Name, strings.Repeat("-", 70), yes(r.Enable), strings.Join(profiles, ","), r.Port, action)
		}
		fmt.Fprint(stdout, "Ok.\r\n\r\n")
		return 0, nil
	}
	return 0, notModelled("netsh advfirewall firewall %s", args[2])
}

// --- certificates ------------------------------------------------------------------

// RunCertutil is `certutil [-f] -p <password> -importpfx [My] <file>
// [NoExport]` (the machine's personal store is -importPFX's default:
// windowsserverdocs certutil.md): the PKCS#12 file's key and certificate
// go into LocalMachine\My. readFile reads the file the path names. A wrong
// password or an unreadable file fails the import (exit 1) without
// changing the store.
func (c *WinRMConfig) RunCertutil(args []string, stdout, stderr io.Writer, readFile func(path string) ([]byte, error)) (uint32, error) {
	var password, store, file string
	havePassword, exportable := false, true
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := strings.ToLower(args[i]); a {
		case "-f":
		case "-p":
			if i+1 >= len(args) {
				return 0, notModelled("certutil -p without a password")
			}
			i++
			password, havePassword = args[i], true
		case "-importpfx":
		default:
			rest = append(rest, args[i])
		}
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.EqualFold(a, "-importpfx") }) {
		return 0, notModelled("certutil %s (only -importPFX is)", strings.Join(args, " "))
	}
	switch len(rest) {
	case 1:
		store, file = "My", rest[0]
	case 2:
		if strings.EqualFold(rest[1], "NoExport") {
			store, file, exportable = "My", rest[0], false
		} else {
			store, file = rest[0], rest[1]
		}
	case 3:
		if !strings.EqualFold(rest[2], "NoExport") {
			return 0, notModelled("certutil -importPFX modifier %q", rest[2])
		}
		store, file, exportable = rest[0], rest[1], false
	default:
		return 0, notModelled("certutil -importPFX %s", strings.Join(rest, " "))
	}
	if !strings.EqualFold(store, "My") {
		return 0, notModelled("certutil -importPFX into the store %q", store)
	}
	if !havePassword {
		return 0, notModelled("certutil -importPFX without -p (certutil asks for the password)")
	}
	data, err := readFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "CertUtil: -importPFX command FAILED: %v\r\n", err)
		return 1, nil
	}
	sc, err := c.ImportPFX(data, password, exportable)
	if err != nil {
		fmt.Fprintf(stderr, "CertUtil: -importPFX command FAILED: %v\r\n", err)
		return 1, nil
	}
	fmt.Fprintf(stdout, "Certificate %q added to store.\r\n\r\nCertUtil: -importPFX command completed successfully.\r\n", sc.Subject)
	return 0, nil
}

// ImportPFX adds a PKCS#12 file's key and certificate to LocalMachine\My
// (replacing the entry of the same thumbprint).
func (c *WinRMConfig) ImportPFX(data []byte, password string, exportable bool) (*StoredCertificate, error) {
	key, cert, err := pkcs12.Decode(data, password)
	if err != nil {
		return nil, fmt.Errorf("the PFX file does not open with that password: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return c.AddCertificate(cert, der, exportable), nil
}

// AddCertificate stores a certificate and its PKCS#8 key in
// LocalMachine\My.
func (c *WinRMConfig) AddCertificate(cert *x509.Certificate, pkcs8 []byte, exportable bool) *StoredCertificate {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // the thumbprint is SHA-1
	sc := StoredCertificate{Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])), Subject: cert.Subject.CommonName,
		DER: cert.Raw, Key: pkcs8, Exportable: exportable}
	c.Certificates = slices.DeleteFunc(c.Certificates, func(x StoredCertificate) bool { return x.Thumbprint == sc.Thumbprint })
	c.Certificates = append(c.Certificates, sc)
	return &c.Certificates[len(c.Certificates)-1]
}

// RemoveCertificate deletes a certificate (and its key) from
// LocalMachine\My; it reports whether there was one.
func (c *WinRMConfig) RemoveCertificate(thumbprint string) bool {
	n := len(c.Certificates)
	c.Certificates = slices.DeleteFunc(c.Certificates, func(x StoredCertificate) bool { return strings.EqualFold(x.Thumbprint, thumbprint) })
	return len(c.Certificates) != n
}

// errNoWinRMConfig is the error of a machine without a WinRM model.
var errNoWinRMConfig = errors.New("this machine has no WinRM configuration model (winsim.Options.WinRM)")
