package winrmsec

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls" //nolint:gosec // Windows names certificates by their SHA-1 thumbprint.
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Names of what a build adds to Windows for WinRM; winbake-sysprep removes
// them and winbake-verify looks for them.
const (
	// CertificateCommonName is the subject CN of every build certificate.
	CertificateCommonName = "winbake WinRM build certificate"
	// CertificateDNSName is the certificate's only subject alternative
	// name; the communicator verifies the listener against it, whatever
	// address the guest has.
	CertificateDNSName = "winbake-winrm-build.invalid"
	// FirewallRuleHTTP opens 5985 for a build over HTTP.
	FirewallRuleHTTP = "WinRM HTTP (winbake build)"
	// FirewallRuleHTTPS opens 5986 for a build over HTTPS.
	FirewallRuleHTTPS = "WinRM HTTPS (winbake build)"
	// PFXFileName is the PKCS#12 file on the answer medium, at its root
	// (an 8.3 name, so a FAT floppy carries it too).
	PFXFileName = "winrm.pfx"
	// HTTPPort and HTTPSPort are WinRM's default ports.
	HTTPPort  = 5985
	HTTPSPort = 5986
)

// Windows builds from which PKCS#12 files with PBES2 (AES-256, PBKDF2 with
// HMAC-SHA-256) import: Windows Server 2019 / Windows 10 1809 (go-pkcs12's
// Modern2023 documentation); older builds read only 3DES.
const modernPFXMinBuild = 17763

// BuildCertificate is the key and self-signed certificate of one build's
// HTTPS listener. The private key lives in memory and on the answer
// medium (in the PKCS#12 file) only; the manifest records the certificate.
type BuildCertificate struct {
	// DER is the certificate.
	DER []byte
	key *rsa.PrivateKey
}

// certificateValidity is how long a build certificate is valid. A golden
// image keeps its listener for later builds from it (source_image) and for
// winbake-sysprep, which verify the certificate's dates; its trust comes
// from being pinned, not from expiring, and winbake-sysprep deletes it.
const certificateValidity = 10 * 365 * 24 * time.Hour

// NewBuildCertificate makes a 3072-bit RSA key and a self-signed server
// certificate for it (CN CertificateCommonName, DNS name
// CertificateDNSName, server authentication only, not a CA, so nothing
// else chains to it). NotBefore is two days back: the guest's clock may run
// in a time zone the host does not know.
func NewBuildCertificate() (*BuildCertificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return nil, fmt.Errorf("generating the WinRM certificate's key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CertificateCommonName},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(certificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              []string{CertificateDNSName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating the WinRM certificate: %w", err)
	}
	return &BuildCertificate{DER: der, key: key}, nil
}

// TLSCertificate is the certificate and key as a TLS server presents
// them.
func (c *BuildCertificate) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.key}
}

// PEM is the certificate in PEM form, as the manifest records it.
func (c *BuildCertificate) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
}

// Thumbprint is the certificate's SHA-1 hash in upper-case hex, the name
// Windows gives it (Cert:\LocalMachine\My\<thumbprint>, a listener's
// CertificateThumbprint).
func (c *BuildCertificate) Thumbprint() string { return Thumbprint(c.DER) }

// Thumbprint is the SHA-1 hash of a DER certificate in upper-case hex.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der) //nolint:gosec // Windows' thumbprint is SHA-1.
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// PFX encodes the key and certificate as PKCS#12 encrypted with password:
// AES-256 for Windows builds from 17763 (Server 2019, Windows 10 1809) on,
// 3DES for older ones, which read nothing else. windowsBuild 0 means
// unknown and takes 3DES.
func (c *BuildCertificate) PFX(password string, windowsBuild int) ([]byte, error) {
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil, err
	}
	enc := pkcs12.LegacyDES
	if windowsBuild >= modernPFXMinBuild {
		enc = pkcs12.Modern2023
	}
	return enc.Encode(c.key, cert, nil, password)
}

// NewPFXPassword returns a random password for the PKCS#12 file: 32 hex
// digits (128 bits), safe unquoted in cmd.exe and XML.
func NewPFXPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating the PKCS#12 password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ParseCertificatePEM reads the one certificate of a PEM text.
func ParseCertificatePEM(text string) (*x509.Certificate, error) {
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("more than one PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}
