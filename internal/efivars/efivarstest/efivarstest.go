// Package efivarstest writes OVMF variable stores for tests: Debian's
// store with Microsoft's keys, with more certificates enrolled the way
// firmware writes a variable update (the new copy appended, the old one
// marked deleted; EDK2 MdeModulePkg/Include/Guid/VariableFormat.h).
package efivarstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/winbake/packer-plugin-winbake/internal/efivars"
)

// DebianMicrosoftVars is Debian's OVMF variable store with Microsoft's 2011
// keys (package ovmf).
const DebianMicrosoftVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"

// Enrollment adds a self-signed certificate with CommonName to Variable
// ("PK", "KEK", "db" or "dbx").
type Enrollment struct {
	Variable, CommonName string
}

// WriteVars writes Debian's Microsoft store with the enrollments to
// dir/efivars.fd and returns its path.
func WriteVars(t testing.TB, dir string, enroll ...Enrollment) string {
	t.Helper()
	b, err := os.ReadFile(DebianMicrosoftVars)
	if err != nil {
		t.Fatalf("Debian's OVMF variable store (apt-get install ovmf; scripts/deps.sh): %v", err)
	}
	for _, e := range enroll {
		vendor := efivars.GlobalVariable
		if e.Variable == "db" || e.Variable == "dbx" {
			vendor = efivars.ImageSecurityDatabase
		}
		b = appendCertificate(t, b, e.Variable, vendor, selfSigned(t, e.CommonName))
	}
	path := filepath.Join(dir, "efivars.fd")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	headerSize = 60 // AUTHENTICATED_VARIABLE_HEADER
	startID    = 0x55aa
	varAdded   = 0x3f
	varDeleted = 0x3c // VAR_ADDED & VAR_IN_DELETED_TRANSITION & VAR_DELETED
)

// appendCertificate appends a new copy of the variable holding its old
// signature lists and one more X.509 list, and marks the old copy deleted.
func appendCertificate(t testing.TB, b []byte, name string, vendor efivars.GUID, der []byte) []byte {
	t.Helper()
	off := int(binary.LittleEndian.Uint16(b[48:50])) + 28
	var old []byte
	attrs := uint32(0x27) // NV, BS, RT, time-based authenticated write access
	for binary.LittleEndian.Uint16(b[off:]) == startID {
		nameSize := int(binary.LittleEndian.Uint32(b[off+36:]))
		dataSize := int(binary.LittleEndian.Uint32(b[off+40:]))
		if b[off+2] == varAdded && efivars.GUID(b[off+44:off+60]) == vendor && bytes.Equal(b[off+headerSize:off+headerSize+nameSize], utf16z(name)) {
			old = append([]byte(nil), b[off+headerSize+nameSize:off+headerSize+nameSize+dataSize]...)
			attrs = binary.LittleEndian.Uint32(b[off+4:])
			b[off+2] = varDeleted
		}
		off += (headerSize + nameSize + dataSize + 3) &^ 3
	}
	data := append(old, x509List(der)...)
	n := utf16z(name)
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint16(h[0:], startID)
	h[2] = varAdded
	binary.LittleEndian.PutUint32(h[4:], attrs)
	binary.LittleEndian.PutUint32(h[36:], uint32(len(n)))
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	copy(h[44:], vendor[:])
	rec := append(append(h, n...), data...)
	if off+len(rec) > len(b) {
		t.Fatalf("no room for %s in the store", name)
	}
	copy(b[off:], rec)
	return b
}

func utf16z(s string) []byte {
	u := append(utf16.Encode([]rune(s)), 0)
	out := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(out[2*i:], c)
	}
	return out
}

// x509List is an EFI_SIGNATURE_LIST of one certificate.
func x509List(der []byte) []byte {
	var b bytes.Buffer
	b.Write(efivars.CertX509[:])
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(28+16+len(der))))
	b.Write(binary.LittleEndian.AppendUint32(nil, 0))
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(16+len(der))))
	b.Write(make([]byte, 16)) // SignatureOwner
	b.Write(der)
	return b.Bytes()
}

func selfSigned(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2023), Subject: pkix.Name{CommonName: cn, Organization: []string{"Microsoft Corporation"}},
		NotBefore: time.Date(2023, 6, 13, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2038, 6, 13, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
