package winsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// cloudbaseWinRMListener is plugins/windows/winrmlistener.py
// ConfigWinRMListenerPlugin: the WinRM service set to start automatically
// and started when it is not (_check_winrm_service); the listeners from
// the metadata service (the modelled services offer none, so
// winrm_configure_http_listener and winrm_configure_https_listener
// decide); Basic authentication set to winrm_enable_basic_auth
// (utils/windows/winrmconfig.py set_auth_config); for HTTPS a self-signed
// certificate "CN=Cloudbase-Init WinRM" (utils/windows/x509.py
// CryptoAPICertManager.create_self_signed_cert: a 2048-bit RSA key in the
// machine's key set, server authentication, ten years, in LocalMachine\My;
// the stand-in signs it with SHA-256 where CryptoAPI uses SHA-1, which no
// client here looks at); an existing listener of the protocol deleted and
// created again (Enabled, CertificateThumbPrint, URLPrefix wsman); a
// firewall rule "WinRM <protocol>" for the listener's port on the current
// profile (osutils/windows.py firewall_create_rule: HNetCfg.FwMgr's
// CurrentProfile.GloballyOpenPorts).
func cloudbaseWinRMListener(_ context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.plugins.windows.winrmlistener"
	var protocols []string
	if p.conf.boolean("winrm_configure_http_listener") {
		protocols = append(protocols, "HTTP")
	}
	if p.conf.boolean("winrm_configure_https_listener") {
		protocols = append(protocols, "HTTPS")
	}
	err := p.m.WinRM(func(c *WinRMConfig) error {
		if c.StartMode == "demand" || c.StartMode == "disabled" {
			c.StartMode = "auto"
		}
		c.Started = true
		if len(protocols) == 0 {
			p.log.log("INFO", logger, "No WinRM listener configuration provided")
			return nil
		}
		c.Auth.Basic = p.conf.boolean("winrm_enable_basic_auth")
		for _, protocol := range protocols {
			thumbprint := ""
			if protocol == "HTTPS" {
				p.log.log("INFO", logger, "Generating self signed certificate for WinRM HTTPS listener")
				sc, err := cloudbaseSelfSignedCert(c, p.m.clock.Now())
				if err != nil {
					return err
				}
				thumbprint = sc.Thumbprint
			}
			p.log.log("INFO", logger, "Configuring WinRM listener for protocol: %s, certificate thumbprint: %s", protocol, cloudbaseNone(thumbprint))
			if c.listener(protocol, "*") != nil {
				if err := c.deleteListener(protocol, "*"); err != nil {
					return err
				}
			}
			values := map[string]string{"Enabled": "true", "URLPrefix": "wsman"}
			if thumbprint != "" {
				values["CertificateThumbprint"] = thumbprint
			}
			if err := c.createListener(protocol, "*", values, discard{}); err != nil {
				return err
			}
			port := c.listener(protocol, "*").Port
			c.FirewallRules = append(c.FirewallRules, FirewallRule{Name: "WinRM " + protocol, Port: port, Allow: true, Enable: true,
				Profiles: []string{profileOf(c.NetworkCategory)}})
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return pluginExecutionDone, false, nil
}

// cloudbaseNone is how Python's logging prints a missing value.
func cloudbaseNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

func cloudbaseSelfSignedCert(c *WinRMConfig, now time.Time) (*StoredCertificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Cloudbase-Init WinRM"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return c.AddCertificate(cert, pkcs8, true), nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
