package winrmsec

import (
	"fmt"
	"strings"
)

// Transports of a build's WinRM.
const (
	TransportHTTP  = "http"
	TransportHTTPS = "https"
)

// BuildWinRM is the manifest's `winrm`: how the build reached WinRM and
// what it left for it in the golden image. A later build from the image
// (source_image) and winbake-sysprep connect the same way;
// winbake-sysprep removes what it names. It never holds a secret.
type BuildWinRM struct {
	// Transport is TransportHTTP (Basic, unencrypted, through a port
	// forward on the host's loopback) or TransportHTTPS.
	Transport string `json:"transport"`
	// Port is the listener's port in the guest.
	Port int `json:"port"`
	// Certificate is the HTTPS listener's certificate (PEM), "" for HTTP.
	Certificate string `json:"certificate,omitempty"`
	// Thumbprint is the certificate's SHA-1 thumbprint, the name of its
	// entry in Cert:\LocalMachine\My.
	Thumbprint string `json:"thumbprint,omitempty"`
	// FirewallRule is the inbound rule the build added for the port.
	FirewallRule string `json:"firewall_rule"`
	// Basic says whether the build turned on Basic authentication
	// (Service/Auth/Basic); with HTTP it also allowed unencrypted
	// messages (Service/AllowUnencrypted).
	Basic bool `json:"basic"`
}

// LegacyBuildWinRM is what every image built before the manifest recorded
// `winrm` has: HTTP on 5985 with Basic and unencrypted messages allowed,
// opened by FirewallRuleHTTP.
var LegacyBuildWinRM = BuildWinRM{Transport: TransportHTTP, Port: HTTPPort, FirewallRule: FirewallRuleHTTP, Basic: true}

// Check reports a record that is not usable to reach the image.
func (b *BuildWinRM) Check() error {
	switch b.Transport {
	case TransportHTTP:
	case TransportHTTPS:
		if b.Certificate == "" {
			return fmt.Errorf("winrm.transport is https but winrm.certificate is empty")
		}
		cert, err := ParseCertificatePEM(b.Certificate)
		if err != nil {
			return fmt.Errorf("winrm.certificate: %w", err)
		}
		if got := Thumbprint(cert.Raw); !strings.EqualFold(got, b.Thumbprint) {
			return fmt.Errorf("winrm.thumbprint %q is not the certificate's (%s)", b.Thumbprint, got)
		}
	default:
		return fmt.Errorf("winrm.transport %q is neither http nor https", b.Transport)
	}
	if b.Port < 1 || b.Port > 65535 {
		return fmt.Errorf("winrm.port %d is not a port", b.Port)
	}
	return nil
}

// HTTPS reports whether the build reached WinRM over HTTPS.
func (b *BuildWinRM) HTTPS() bool { return b != nil && b.Transport == TransportHTTPS }

// ImageWinRM is winbake-sysprep's record of the WinRM a generalized image
// offers (the manifest's `image_winrm`).
type ImageWinRM struct {
	// BuildRemoved: winbake-sysprep removed the build's listener,
	// firewall rule and certificate and turned Basic and unencrypted
	// messages off, leaving Windows' defaults.
	BuildRemoved bool `json:"build_removed"`
	// HTTPSAtFirstBoot: cloudbase-init's ConfigWinRMListenerPlugin creates
	// an HTTPS listener (a self-signed certificate, TCP 5986) at an
	// instance's first boot.
	HTTPSAtFirstBoot bool `json:"https_at_first_boot"`
}
