// Package efivars reads the UEFI variable store of an OVMF (EDK2) firmware
// image, the efivars.fd a winbake image keeps (QEMU's second pflash, or
// libvirt's NVRAM file), and the Secure Boot certificates its PK, KEK, db
// and dbx variables hold.
//
// The layout is EDK2's, not the UEFI specification's (which defines the
// variables, not how firmware stores them):
//
//   - the file is a firmware volume: EFI_FIRMWARE_VOLUME_HEADER (PI
//     specification vol. 3 §3.2.1; EDK2 MdePkg/Include/Pi/PiFirmwareVolume.h)
//     with the "_FVH" signature and the file system GUID
//     gEfiSystemNvDataFvGuid; the variable store follows its HeaderLength;
//   - the store is a VARIABLE_STORE_HEADER whose Signature is
//     gEfiAuthenticatedVariableGuid (OVMF's stores are authenticated ones),
//     Format VARIABLE_STORE_FORMATTED and State VARIABLE_STORE_HEALTHY,
//     followed by AUTHENTICATED_VARIABLE_HEADER entries, each starting with
//     StartId 0x55AA and aligned to 4 bytes, its UTF-16 name and data
//     right after it (EDK2 MdeModulePkg/Include/Guid/VariableFormat.h);
//   - an entry's State byte says whether it is the variable's live copy:
//     VAR_ADDED (0x3f); VAR_ADDED with VAR_IN_DELETED_TRANSITION cleared
//     (0x3e) is the old copy while a write was under way, live only when no
//     VAR_ADDED copy follows; anything else is deleted or half written
//     (FindVariableEx in EDK2's MdeModulePkg/Universal/Variable/RuntimeDxe).
//
// The Secure Boot variables are signature databases, EFI_SIGNATURE_LIST
// after EFI_SIGNATURE_LIST (UEFI specification 2.10 §32.4.1 "Signature
// Database"; EDK2 MdePkg/Include/Guid/ImageAuthentication.h): "PK" and
// "KEK" under EFI_GLOBAL_VARIABLE, "db" and "dbx" under
// EFI_IMAGE_SECURITY_DATABASE_GUID (UEFI specification §3.3 "Globally
// Defined Variables" and §32.6.1). A list of type EFI_CERT_X509_GUID holds
// DER certificates after each entry's 16-byte SignatureOwner.
package efivars

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"unicode/utf16"
)

// GUID is an EFI_GUID as firmware stores it: Data1..Data3 little-endian,
// Data4 as bytes.
type GUID [16]byte

// guid builds an EFI_GUID from the { Data1, Data2, Data3, { Data4 } }
// notation of EDK2's headers.
func guid(d1 uint32, d2, d3 uint16, d4 ...byte) GUID {
	var g GUID
	binary.LittleEndian.PutUint32(g[0:], d1)
	binary.LittleEndian.PutUint16(g[4:], d2)
	binary.LittleEndian.PutUint16(g[6:], d3)
	copy(g[8:], d4)
	return g
}

func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:])
}

// GUIDs of EDK2's headers.
var (
	// GlobalVariable is EFI_GLOBAL_VARIABLE (MdePkg/Include/Guid/GlobalVariable.h): PK, KEK.
	GlobalVariable = guid(0x8be4df61, 0x93ca, 0x11d2, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c)
	// ImageSecurityDatabase is EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx.
	ImageSecurityDatabase = guid(0xd719b2cb, 0x3d3a, 0x4596, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f)
	// CertX509 is EFI_CERT_X509_GUID: one DER certificate per signature.
	CertX509 = guid(0xa5c059a1, 0x94e4, 0x4aa7, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72)
	// CertSHA256 is EFI_CERT_SHA256_GUID: a SHA-256 hash per signature
	// (dbx's revoked images).
	CertSHA256 = guid(0xc1c41626, 0x504c, 0x4092, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28)
	// AuthenticatedVariableStore is gEfiAuthenticatedVariableGuid, the
	// signature of a store of AUTHENTICATED_VARIABLE_HEADER entries.
	AuthenticatedVariableStore = guid(0xaaf32c78, 0x947b, 0x439a, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92)
	// variableStore is gEfiVariableGuid, the signature of a store of
	// plain VARIABLE_HEADER entries (no Secure Boot).
	variableStore = guid(0xddcf3616, 0x3275, 0x4164, 0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d)
	// SystemNvDataFv is gEfiSystemNvDataFvGuid, the file system GUID of
	// the firmware volume that holds the variable store
	// (MdePkg/Include/Guid/SystemNvDataGuid.h).
	SystemNvDataFv = guid(0xfff12b8d, 0x7696, 0x4c8b, 0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50)
)

// VariableFormat.h and PiFirmwareVolume.h constants.
const (
	fvSignature          = "_FVH"
	fvHeaderFixedSize    = 56 // up to and including Revision, before the block map
	storeHeaderSize      = 28 // VARIABLE_STORE_HEADER
	storeFormatted       = 0x5a
	storeHealthy         = 0xfe
	variableStartID      = 0x55aa
	authHeaderSize       = 60 // AUTHENTICATED_VARIABLE_HEADER
	headerAlignment      = 4
	varAdded             = 0x3f
	varInDeletedTransit  = 0xfe
	varAddedInTransition = varAdded & varInDeletedTransit // 0x3e
)

// Variable is one live variable of the store.
type Variable struct {
	Name       string
	Vendor     GUID
	Attributes uint32
	Data       []byte
}

// Store is the variable store of a firmware image.
type Store struct {
	Variables []Variable
}

// Lookup returns the variable name of vendor.
func (s *Store) Lookup(name string, vendor GUID) (Variable, bool) {
	for _, v := range s.Variables {
		if v.Name == name && v.Vendor == vendor {
			return v, true
		}
	}
	return Variable{}, false
}

// ReadFile reads the variable store of an OVMF variables file, raw or, as
// some distributions ship it, qcow2 (converted to raw with qemu-img first).
func ReadFile(path string) (*Store, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte("QFI\xfb")) {
		if b, err = qcow2ToRaw(path); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func qcow2ToRaw(path string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "winbake-efivars-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	raw := filepath.Join(dir, "vars.raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img convert of the qcow2 variable store: %v: %s", err, bytes.TrimSpace(out))
	}
	return os.ReadFile(raw)
}

// Parse reads the variable store of a firmware volume image.
func Parse(b []byte) (*Store, error) {
	if len(b) < fvHeaderFixedSize {
		return nil, errors.New("too short for a firmware volume header")
	}
	if string(b[40:44]) != fvSignature {
		return nil, fmt.Errorf("no firmware volume signature %q at offset 40: not an OVMF variables file", fvSignature)
	}
	if fs := GUID(b[16:32]); fs != SystemNvDataFv {
		return nil, fmt.Errorf("firmware volume file system %s is not the NV data one (%s)", fs, SystemNvDataFv)
	}
	fvLength := binary.LittleEndian.Uint64(b[32:40])
	headerLength := int(binary.LittleEndian.Uint16(b[48:50]))
	if fvLength > uint64(len(b)) || headerLength < fvHeaderFixedSize || headerLength+storeHeaderSize > len(b) {
		return nil, fmt.Errorf("firmware volume length %d / header length %d do not fit the %d-byte file", fvLength, headerLength, len(b))
	}
	store := b[headerLength:]
	sig := GUID(store[0:16])
	switch sig {
	case AuthenticatedVariableStore:
	case variableStore:
		return nil, errors.New("the variable store is not an authenticated one (gEfiVariableGuid): firmware built without Secure Boot support")
	default:
		return nil, fmt.Errorf("variable store signature %s is neither gEfiAuthenticatedVariableGuid nor gEfiVariableGuid", sig)
	}
	size := int(binary.LittleEndian.Uint32(store[16:20]))
	if format, state := store[20], store[21]; format != storeFormatted || state != storeHealthy {
		return nil, fmt.Errorf("variable store format 0x%02x state 0x%02x, not formatted (0x%02x) and healthy (0x%02x)", format, state, storeFormatted, storeHealthy)
	}
	if size < storeHeaderSize || size > len(store) {
		return nil, fmt.Errorf("variable store size %d does not fit the %d bytes after the volume header", size, len(store))
	}
	store = store[:size]

	type entry struct {
		v     Variable
		state byte
	}
	var live, transition []entry
	off := storeHeaderSize
	for off+authHeaderSize <= len(store) {
		h := store[off:]
		if binary.LittleEndian.Uint16(h[0:2]) != variableStartID {
			break // the free space (0xff) after the last variable
		}
		state := h[2]
		attrs := binary.LittleEndian.Uint32(h[4:8])
		nameSize := int(binary.LittleEndian.Uint32(h[36:40]))
		dataSize := int(binary.LittleEndian.Uint32(h[40:44]))
		vendor := GUID(h[44:60])
		end := authHeaderSize + nameSize + dataSize
		if nameSize < 0 || dataSize < 0 || end > len(h) || nameSize%2 != 0 {
			return nil, fmt.Errorf("variable at offset %d: name size %d and data size %d overrun the store", off, nameSize, dataSize)
		}
		if state == varAdded || state == varAddedInTransition {
			name := decodeName(h[authHeaderSize : authHeaderSize+nameSize])
			data := append([]byte(nil), h[authHeaderSize+nameSize:end]...)
			e := entry{Variable{Name: name, Vendor: vendor, Attributes: attrs, Data: data}, state}
			if state == varAdded {
				live = append(live, e)
			} else {
				transition = append(transition, e)
			}
		}
		off += (end + headerAlignment - 1) &^ (headerAlignment - 1)
	}
	s := &Store{}
	for _, e := range live {
		s.Variables = append(s.Variables, e.v)
	}
	for _, e := range transition {
		if _, ok := s.Lookup(e.v.Name, e.v.Vendor); !ok {
			s.Variables = append(s.Variables, e.v)
		}
	}
	return s, nil
}

// decodeName decodes a NUL-terminated UTF-16LE variable name.
func decodeName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
