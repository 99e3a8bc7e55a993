package efivars

import (
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Signature is one EFI_SIGNATURE_DATA: its owner and its data (a DER
// certificate for CertX509, a hash for CertSHA256, ...).
type Signature struct {
	Owner GUID
	Data  []byte
}

// SignatureList is one EFI_SIGNATURE_LIST.
type SignatureList struct {
	Type       GUID
	Header     []byte
	Signatures []Signature
}

const signatureListHeaderSize = 28 // SignatureType, SignatureListSize, SignatureHeaderSize, SignatureSize

// ParseSignatureLists reads a signature database: the data of PK, KEK, db
// or dbx, EFI_SIGNATURE_LIST after EFI_SIGNATURE_LIST.
func ParseSignatureLists(data []byte) ([]SignatureList, error) {
	var lists []SignatureList
	for off := 0; off < len(data); {
		if len(data)-off < signatureListHeaderSize {
			return nil, fmt.Errorf("signature list at offset %d: %d bytes left, a header needs %d", off, len(data)-off, signatureListHeaderSize)
		}
		h := data[off:]
		l := SignatureList{Type: GUID(h[0:16])}
		listSize := int(binary.LittleEndian.Uint32(h[16:20]))
		headerSize := int(binary.LittleEndian.Uint32(h[20:24]))
		sigSize := int(binary.LittleEndian.Uint32(h[24:28]))
		if listSize < signatureListHeaderSize || listSize > len(h) || headerSize < 0 || signatureListHeaderSize+headerSize > listSize {
			return nil, fmt.Errorf("signature list at offset %d: SignatureListSize %d, SignatureHeaderSize %d do not fit %d bytes", off, listSize, headerSize, len(h))
		}
		body := h[signatureListHeaderSize+headerSize : listSize]
		if sigSize <= 16 || len(body)%sigSize != 0 {
			return nil, fmt.Errorf("signature list at offset %d: SignatureSize %d does not divide its %d bytes of signatures", off, sigSize, len(body))
		}
		l.Header = append([]byte(nil), h[signatureListHeaderSize:signatureListHeaderSize+headerSize]...)
		for i := 0; i < len(body); i += sigSize {
			s := body[i : i+sigSize]
			l.Signatures = append(l.Signatures, Signature{Owner: GUID(s[0:16]), Data: append([]byte(nil), s[16:]...)})
		}
		lists = append(lists, l)
		off += listSize
	}
	return lists, nil
}

// Certificate is an X.509 certificate of a signature database, as the
// manifest records it.
type Certificate struct {
	// Subject is the certificate's subject, RFC 2253 style
	// ("CN=Microsoft Corporation KEK CA 2011,O=Microsoft Corporation,...").
	Subject string `json:"subject"`
	// NotAfter is when it expires.
	NotAfter time.Time `json:"not_after"`
}

// CommonName is the subject's CN, "" without one.
func (c Certificate) CommonName() string {
	for _, rdn := range splitRDNs(c.Subject) {
		if v, ok := strings.CutPrefix(rdn, "CN="); ok {
			return strings.ReplaceAll(v, `\`, "")
		}
	}
	return ""
}

// splitRDNs splits an RFC 2253 name at the commas that are not escaped.
func splitRDNs(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// SecureBootCertificates are the X.509 certificates of a variable store's
// Secure Boot databases. A variable that is not set has an empty list.
type SecureBootCertificates struct {
	PK  []Certificate `json:"pk"`
	KEK []Certificate `json:"kek"`
	DB  []Certificate `json:"db"`
	// DBX are the certificates dbx revokes; DBXHashes counts the image
	// hashes it revokes (EFI_CERT_SHA256 and other hash lists).
	DBX       []Certificate `json:"dbx"`
	DBXHashes int           `json:"dbx_hashes"`
}

// SecureBootCertificates reads PK, KEK, db and dbx.
func (s *Store) SecureBootCertificates() (SecureBootCertificates, error) {
	var out SecureBootCertificates
	for _, v := range []struct {
		name   string
		vendor GUID
		certs  *[]Certificate
		hashes *int
	}{
		{"PK", GlobalVariable, &out.PK, nil},
		{"KEK", GlobalVariable, &out.KEK, nil},
		{"db", ImageSecurityDatabase, &out.DB, nil},
		{"dbx", ImageSecurityDatabase, &out.DBX, &out.DBXHashes},
	} {
		*v.certs = []Certificate{}
		variable, ok := s.Lookup(v.name, v.vendor)
		if !ok {
			continue
		}
		lists, err := ParseSignatureLists(variable.Data)
		if err != nil {
			return out, fmt.Errorf("%s: %w", v.name, err)
		}
		for _, l := range lists {
			for i, sig := range l.Signatures {
				if l.Type != CertX509 {
					if v.hashes != nil {
						*v.hashes++
					}
					continue
				}
				cert, err := x509.ParseCertificate(sig.Data)
				if err != nil {
					return out, fmt.Errorf("%s: X.509 signature %d: %w", v.name, i, err)
				}
				*v.certs = append(*v.certs, Certificate{Subject: cert.Subject.String(), NotAfter: cert.NotAfter.UTC()})
			}
		}
	}
	return out, nil
}

// Microsoft's 2023 Secure Boot CAs, which replace the 2011 ones that expire
// in 2026 (Microsoft, "Windows Secure Boot certificate expiration and CA
// updates", KB5062710): the KEK that lets Windows update db and dbx, and
// the db CA that signs new Windows boot managers.
const (
	KEKCA2023         = "Microsoft Corporation KEK 2K CA 2023"
	WindowsUEFICA2023 = "Windows UEFI CA 2023"
	// MicrosoftUEFICA2023 signs third-party boot loaders (shim) and
	// MicrosoftOptionROMCA2023 option ROMs.
	MicrosoftUEFICA2023      = "Microsoft UEFI CA 2023"
	MicrosoftOptionROMCA2023 = "Microsoft Option ROM UEFI CA 2023"
)

// Has reports whether a certificate with the common name cn is in list.
func Has(list []Certificate, cn string) bool {
	for _, c := range list {
		if c.CommonName() == cn {
			return true
		}
	}
	return false
}

// Missing2023 names the 2023 CAs Windows needs that the databases lack:
// Windows UEFI CA 2023 in db (new boot managers are signed by it) and
// Microsoft Corporation KEK 2K CA 2023 in KEK (Windows signs its db and
// dbx updates with it), as "db: Windows UEFI CA 2023".
func (c SecureBootCertificates) Missing2023() []string {
	var missing []string
	if !Has(c.DB, WindowsUEFICA2023) {
		missing = append(missing, "db: "+WindowsUEFICA2023)
	}
	if !Has(c.KEK, KEKCA2023) {
		missing = append(missing, "KEK: "+KEKCA2023)
	}
	return missing
}

// Summary is one line per database listing the certificates' common
// names.
func (c SecureBootCertificates) Summary() string {
	names := func(list []Certificate) string {
		if len(list) == 0 {
			return "(none)"
		}
		var n []string
		for _, x := range list {
			cn := x.CommonName()
			if cn == "" {
				cn = x.Subject
			}
			n = append(n, cn)
		}
		return strings.Join(n, "; ")
	}
	return fmt.Sprintf("PK: %s | KEK: %s | db: %s | dbx: %d certificate(s), %d hash(es)", names(c.PK), names(c.KEK), names(c.DB), len(c.DBX), c.DBXHashes)
}
