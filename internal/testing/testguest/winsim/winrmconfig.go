package winsim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

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
// ConfigWinRMListenerPlugin, through the Run* functions (winrm_cmd.go,
// netsh.go, certutil.go), and the stand-in's WinRM server serves what
// Endpoints says. The forms winbake
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

// errNoWinRMConfig is the error of a machine without a WinRM model.
var errNoWinRMConfig = errors.New("this machine has no WinRM configuration model (winsim.Options.WinRM)")
