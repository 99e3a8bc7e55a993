package unattend

import (
	"bytes"
	_ "embed"
	"regexp"
	"text/template"
)

// WinRMSettings say how the first logon enables WinRM for the build.
// The zero value is WinRM over HTTP with Basic authentication and
// unencrypted messages allowed (guest/enable-winrm.cmd), for a guest
// reached through a port forward on the build host's loopback.
type WinRMSettings struct {
	// HTTPS enables a listener on HTTPSPort with the certificate in
	// PFXFile on the answer medium instead (guest/enable-winrm-https.cmd),
	// keeping Windows' default HTTP listener, which accepts encrypted
	// messages only.
	HTTPS bool
	// Thumbprint is the certificate's SHA-1 thumbprint (40 hex digits).
	Thumbprint string
	// PFXFile is the PKCS#12 file's name at the root of the answer medium
	// (an 8.3 name) and PFXPassword its password (letters and digits).
	PFXFile     string
	PFXPassword string
	// FirewallRule is the name of the inbound rule that opens HTTPSPort.
	FirewallRule string
	// NoBasic leaves Basic authentication off: the communicator uses
	// NTLM over HTTPS.
	NoBasic bool
}

// HTTPSPort is the port of the HTTPS listener.
const HTTPSPort = 5986

//go:embed guest/enable-winrm-https.cmd
var enableWinRMHTTPSScript string

var enableWinRMHTTPS = template.Must(template.New("enable-winrm-https.cmd").Option("missingkey=error").Parse(enableWinRMHTTPSScript))

// WinRMCommands returns the commands that enable WinRM as s.WinRM says,
// parsed as the package-level WinRMCommands parses its script.
func (s Settings) WinRMCommands() []Command {
	if !s.WinRM.HTTPS {
		return WinRMCommands()
	}
	w := s.WinRM
	var b bytes.Buffer
	err := enableWinRMHTTPS.Execute(&b, map[string]any{
		"Thumbprint": w.Thumbprint, "PFXFile": w.PFXFile, "PFXPassword": w.PFXPassword,
		"FirewallRule": w.FirewallRule, "Port": HTTPSPort, "Basic": !w.NoBasic,
	})
	if err != nil {
		// The template and its data are fixed; Validate checks the values.
		panic(err)
	}
	return parseCommandScript(b.String(), "winbake: enable WinRM over HTTPS")
}

var (
	thumbprintPattern   = regexp.MustCompile(`^[0-9A-F]{40}$`)
	pfxPasswordPattern  = regexp.MustCompile(`^[0-9A-Za-z]{16,64}$`)
	pfxFilePattern      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,8}\.[A-Za-z0-9]{1,3}$`)
	firewallRulePattern = regexp.MustCompile(`^[A-Za-z0-9 ()._-]{1,64}$`)
)

// validateWinRM checks the HTTPS settings; they are made by winbake, so a
// problem is an internal error reported against the field that carries it.
func (w WinRMSettings) problems() []error {
	if !w.HTTPS {
		return nil
	}
	var errs []error
	if !thumbprintPattern.MatchString(w.Thumbprint) {
		errs = append(errs, fieldErr("winrm_use_ssl", "the build certificate's thumbprint %q is not 40 upper-case hex digits", w.Thumbprint))
	}
	if !pfxFilePattern.MatchString(w.PFXFile) {
		errs = append(errs, fieldErr("winrm_use_ssl", "the certificate file name %q is not an 8.3 file name", w.PFXFile))
	}
	if !pfxPasswordPattern.MatchString(w.PFXPassword) {
		errs = append(errs, fieldErr("winrm_use_ssl", "the certificate file's password must be 16 to 64 letters and digits"))
	}
	if !firewallRulePattern.MatchString(w.FirewallRule) {
		errs = append(errs, fieldErr("winrm_use_ssl", "the firewall rule name %q has characters cmd.exe would interpret", w.FirewallRule))
	}
	return errs
}
