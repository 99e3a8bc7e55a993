package efivars

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
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// Debian's OVMF variable stores (package ovmf, installed by scripts/deps.sh).
const (
	debianVarsMS    = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	debianVarsEmpty = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

func readDebian(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Debian's OVMF variable store (apt-get install ovmf; scripts/deps.sh): %v", err)
	}
	return b
}

func commonNames(list []Certificate) []string {
	out := []string{}
	for _, c := range list {
		out = append(out, c.CommonName())
	}
	return out
}

// Debian's Secure Boot store enrolls Debian's PK, Debian's and Microsoft's
// 2011 KEK, and Microsoft's two 2011 db CAs: none of the 2023 ones.
func TestDebianMicrosoftKeys(t *testing.T) {
	s, err := ReadFile(debianVarsMS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.SecureBootCertificates()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"PK":  {"Debian UEFI Secure Boot (PK/KEK key)"},
		"KEK": {"Debian UEFI Secure Boot (PK/KEK key)", "Microsoft Corporation KEK CA 2011"},
		"db":  {"Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011"},
		"dbx": {},
	}
	got := map[string][]string{"PK": commonNames(c.PK), "KEK": commonNames(c.KEK), "db": commonNames(c.DB), "dbx": commonNames(c.DBX)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("certificates %v, want %v", got, want)
	}
	if c.KEK[1].Subject != "CN=Microsoft Corporation KEK CA 2011,O=Microsoft Corporation,L=Redmond,ST=Washington,C=US" {
		t.Errorf("KEK subject %q", c.KEK[1].Subject)
	}
	if exp := c.KEK[1].NotAfter; exp.Year() != 2026 || exp.Month() != time.June {
		t.Errorf("KEK CA 2011 expires %s, Microsoft says June 2026", exp)
	}
	if c.DBXHashes != 1 {
		t.Errorf("dbx hashes %d, want Debian's one placeholder hash", c.DBXHashes)
	}
	if m := c.Missing2023(); !reflect.DeepEqual(m, []string{"db: Windows UEFI CA 2023", "KEK: Microsoft Corporation KEK 2K CA 2023"}) {
		t.Errorf("missing %q", m)
	}
	if _, ok := s.Lookup("SecureBootEnable", guid(0xf0a30bc7, 0xaf08, 0x4556, 0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44)); !ok {
		t.Error("OVMF's SecureBootEnable variable not found")
	}
}

// The store without enrolled keys has no PK, KEK, db or dbx.
func TestDebianNoKeys(t *testing.T) {
	s, err := Parse(readDebian(t, debianVarsEmpty))
	if err != nil {
		t.Fatal(err)
	}
	// Debian ships it freshly formatted: a healthy store holding nothing.
	if len(s.Variables) != 0 {
		t.Errorf("variables %v in Debian's empty store", s.Variables)
	}
	c, err := s.SecureBootCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.PK)+len(c.KEK)+len(c.DB)+len(c.DBX)+c.DBXHashes != 0 || c.PK == nil {
		t.Errorf("certificates %+v, want empty lists", c)
	}
}

// selfSigned is a certificate with the common name cn.
func selfSigned(t *testing.T, cn string) []byte {
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

// x509List is an EFI_SIGNATURE_LIST of one certificate.
func x509List(der []byte) []byte {
	var b bytes.Buffer
	b.Write(CertX509[:])
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(28+16+len(der))))
	b.Write(binary.LittleEndian.AppendUint32(nil, 0))
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(16+len(der))))
	owner := guid(0x77fa9abd, 0x0359, 0x4d32, 0xbd, 0x60, 0x28, 0xf4, 0xe7, 0x8f, 0x78, 0x4b) // Microsoft's owner GUID
	b.Write(owner[:])
	b.Write(der)
	return b.Bytes()
}

// sbsiglist is the EFI_SIGNATURE_LIST sbsigntool's sbsiglist writes for a
// DER certificate (package sbsigntool, scripts/deps.sh).
func sbsiglist(t *testing.T, der []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	cert, out := filepath.Join(dir, "cert.der"), filepath.Join(dir, "cert.siglist")
	if err := os.WriteFile(cert, der, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("sbsiglist", "--owner", "77fa9abd-0359-4d32-bd60-28f4e78f784b", "--type", "x509", "--output", out, cert).CombinedOutput(); err != nil {
		t.Fatalf("sbsiglist (apt-get install sbsigntool): %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if lists, err := ParseSignatureLists(b); err != nil || len(lists) != 1 || lists[0].Type != CertX509 || !bytes.Equal(lists[0].Signatures[0].Data, der) ||
		lists[0].Signatures[0].Owner.String() != "77fa9abd-0359-4d32-bd60-28f4e78f784b" {
		t.Fatalf("sbsiglist's list reads as %+v, %v", lists, err)
	}
	return b
}

// variableOffsets returns the offset (in the file) of each variable header
// named name, and the offset of the free space after the last one.
func variableOffsets(t *testing.T, b []byte, name string) (found []int, free int) {
	t.Helper()
	base := int(binary.LittleEndian.Uint16(b[48:50]))
	off := base + storeHeaderSize
	for binary.LittleEndian.Uint16(b[off:]) == variableStartID {
		nameSize := int(binary.LittleEndian.Uint32(b[off+36:]))
		dataSize := int(binary.LittleEndian.Uint32(b[off+40:]))
		if decodeName(b[off+authHeaderSize:off+authHeaderSize+nameSize]) == name {
			found = append(found, off)
		}
		off += (authHeaderSize + nameSize + dataSize + 3) &^ 3
	}
	return found, off
}

// appendVariable writes an AUTHENTICATED_VARIABLE_HEADER with name and
// data into the free space at off, as the firmware does for SetVariable.
func appendVariable(b []byte, off int, state byte, name string, vendor GUID, attrs uint32, data []byte) {
	u := append(utf16.Encode([]rune(name)), 0)
	nameBytes := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(nameBytes[2*i:], c)
	}
	h := make([]byte, authHeaderSize)
	binary.LittleEndian.PutUint16(h[0:], variableStartID)
	h[2] = state
	binary.LittleEndian.PutUint32(h[4:], attrs)
	binary.LittleEndian.PutUint32(h[36:], uint32(len(nameBytes)))
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	copy(h[44:], vendor[:])
	copy(b[off:], h)
	copy(b[off+authHeaderSize:], nameBytes)
	copy(b[off+authHeaderSize+len(nameBytes):], data)
}

// A store updated with the 2023 CAs, as firmware writes an update: the new
// db and KEK appended, the old copies marked deleted (db) or left in
// deleted transition (KEK, as after a write interrupted once the new copy
// was complete). The parser takes the new copies.
func TestStoreWith2023CAs(t *testing.T) {
	b := readDebian(t, debianVarsMS)
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	free := 0
	for _, u := range []struct {
		name, cn string
		vendor   GUID
		oldState byte
	}{
		{"db", WindowsUEFICA2023, ImageSecurityDatabase, 0x3c},             // VAR_ADDED & VAR_IN_DELETED_TRANSITION & VAR_DELETED
		{"KEK", KEKCA2023, GlobalVariable, varAdded & varInDeletedTransit}, // 0x3e
	} {
		old, _ := s.Lookup(u.name, u.vendor)
		found, end := variableOffsets(t, b, u.name)
		if len(found) != 1 {
			t.Fatalf("%s found %d times", u.name, len(found))
		}
		b[found[0]+2] = u.oldState
		free = end
		list := x509List(selfSigned(t, u.cn))
		if u.name == "db" {
			// The db's new list comes from sbsigntool's sbsiglist, a
			// tool of its own that writes EFI_SIGNATURE_LISTs.
			list = sbsiglist(t, selfSigned(t, u.cn))
		}
		data := append(append([]byte{}, old.Data...), list...)
		appendVariable(b, free, varAdded, u.name, u.vendor, old.Attributes, data)
	}
	// A half-written variable (VAR_HEADER_VALID_ONLY) is not live.
	_, free = variableOffsets(t, b, "")
	appendVariable(b, free, 0x7f, "db", ImageSecurityDatabase, 0x27, x509List(selfSigned(t, "Half Written CA")))

	path := filepath.Join(t.TempDir(), "efivars.fd")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.SecureBootCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if got := commonNames(c.DB); !reflect.DeepEqual(got, []string{"Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011", WindowsUEFICA2023}) {
		t.Errorf("db %q", got)
	}
	if got := commonNames(c.KEK); !reflect.DeepEqual(got, []string{"Debian UEFI Secure Boot (PK/KEK key)", "Microsoft Corporation KEK CA 2011", KEKCA2023}) {
		t.Errorf("KEK %q", got)
	}
	if m := c.Missing2023(); len(m) != 0 {
		t.Errorf("missing %q", m)
	}
	if !strings.Contains(c.Summary(), "db: Microsoft Windows Production PCA 2011; Microsoft Corporation UEFI CA 2011; Windows UEFI CA 2023") {
		t.Errorf("summary %s", c.Summary())
	}

	// qemu-img's qcow2 of the same store reads the same.
	qcow := filepath.Join(t.TempDir(), "efivars.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", path, qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	sq, err := ReadFile(qcow)
	if err != nil {
		t.Fatal(err)
	}
	cq, err := sq.SecureBootCertificates()
	if err != nil || !reflect.DeepEqual(cq, c) {
		t.Errorf("qcow2 store: %v\n%+v\nwant %+v", err, cq, c)
	}
}

func TestBrokenStores(t *testing.T) {
	good := readDebian(t, debianVarsMS)
	for _, c := range []struct {
		name  string
		edit  func(b []byte) []byte
		error string
	}{
		{"not a volume", func(b []byte) []byte {
			return []byte("just some bytes, not firmware at all, long enough for a header....")
		}, "no firmware volume signature"},
		{"other file system", func(b []byte) []byte { b[16] ^= 0xff; return b }, "is not the NV data one"},
		{"plain store", func(b []byte) []byte {
			base := int(binary.LittleEndian.Uint16(b[48:50]))
			copy(b[base:], variableStore[:])
			return b
		}, "not an authenticated one"},
		{"unhealthy", func(b []byte) []byte {
			base := int(binary.LittleEndian.Uint16(b[48:50]))
			b[base+21] = 0
			return b
		}, "not formatted (0x5a) and healthy (0xfe)"},
		{"overrun", func(b []byte) []byte {
			found, _ := variableOffsets(t, b, "PK")
			binary.LittleEndian.PutUint32(b[found[0]+40:], 1<<30)
			return b
		}, "overrun the store"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.edit(append([]byte{}, good...)))
			if err == nil || !strings.Contains(err.Error(), c.error) {
				t.Errorf("error %v, want %q", err, c.error)
			}
		})
	}
	// A db whose signature list is cut short.
	s, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Variables {
		if s.Variables[i].Name == "db" {
			s.Variables[i].Data = s.Variables[i].Data[:40]
		}
	}
	if _, err := s.SecureBootCertificates(); err == nil || !strings.Contains(err.Error(), "db: signature list at offset 0") {
		t.Errorf("error %v", err)
	}
}

func TestGUIDString(t *testing.T) {
	if got := ImageSecurityDatabase.String(); got != "d719b2cb-3d3a-4596-a3bc-dad00e67656f" {
		t.Errorf("%s", got)
	}
}
