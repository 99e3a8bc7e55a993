package winsim

import (
	"crypto/sha1" //nolint:gosec // Windows names certificates by their SHA-1 thumbprint.
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

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
