package winsim

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

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
