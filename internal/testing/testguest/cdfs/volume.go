package cdfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// SectorSize is the CD sector and the only logical block size CDFS mounts.
const SectorSize = 2048

// Volume descriptor types and layout (ECMA-119 8.1, 8.4, 8.5).
const (
	firstDescriptorSector = 16
	descPrimary           = 1
	descSupplementary     = 2
	descTerminator        = 255
	// Volume descriptors read at most, so a damaged image cannot make the
	// scan run to its end.
	maxDescriptors = 64
)

// Volume is a mounted ISO 9660 volume.
type Volume struct {
	r      io.ReaderAt
	joliet bool
	label  string
	udf    bool

	blockSize     uint16
	pathTableLoc  uint32
	pathTableSize uint32
	root          dirRecord

	// The type L path table, parsed on first use; ordinal n is
	// pathTable[n-1].
	pathTable       []pathEntry
	pathTableErr    error
	pathTableParsed bool
}

// pathEntry is one directory of the path table (ECMA-119 9.4).
type pathEntry struct {
	name   string // decoded, trailing dot dropped
	upper  string
	extent uint32 // first block, after the extended attribute record
	parent uint16 // ordinal of the parent
}

// CorruptError is what CDFS raises as STATUS_DISK_CORRUPT_ERROR or
// STATUS_FILE_CORRUPT_ERROR: the medium is not as ISO 9660 says.
type CorruptError struct {
	Status string
	Reason string
}

func (e *CorruptError) Error() string { return e.Status + ": " + e.Reason }

func diskCorrupt(format string, args ...any) error {
	return &CorruptError{Status: "STATUS_DISK_CORRUPT_ERROR", Reason: fmt.Sprintf(format, args...)}
}

func fileCorrupt(format string, args ...any) error {
	return &CorruptError{Status: "STATUS_FILE_CORRUPT_ERROR", Reason: fmt.Sprintf(format, args...)}
}

// ErrUnrecognized is returned by Open when the medium has no ISO 9660
// primary volume descriptor: CDFS does not mount it
// (STATUS_UNRECOGNIZED_VOLUME).
var ErrUnrecognized = errors.New("STATUS_UNRECOGNIZED_VOLUME: no ISO 9660 primary volume descriptor from sector 16 on")

// ErrNotModelled wraps what the stand-in's CDFS does not model.
var ErrNotModelled = errors.New("not modelled by the stand-in's CDFS")

func readSector(r io.ReaderAt, sector int64) ([]byte, error) {
	b := make([]byte, SectorSize)
	n, err := r.ReadAt(b, sector*SectorSize)
	if n == SectorSize {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("reading sector %d: %w", sector, err)
}

// Open mounts the ISO 9660 file system of r as CDFS does: the primary
// volume descriptor (fsctrl.c CdFindPrimaryVd), then a Joliet
// supplementary one if any (CdFindActiveVolDescriptor), which replaces it.
func Open(r io.ReaderAt) (*Volume, error) {
	v := &Volume{r: r, udf: hasUDF(r)}
	var primary, joliet []byte
	for i := int64(0); i < maxDescriptors; i++ {
		b, err := readSector(r, firstDescriptorSector+i)
		if err != nil {
			if primary == nil {
				return nil, fmt.Errorf("%w (%v)", ErrUnrecognized, err)
			}
			break
		}
		// Both scans stop at the first sector that is not a version 1
		// "CD001" descriptor, and at the terminator.
		if string(b[1:6]) != "CD001" || b[6] != 1 || b[0] == descTerminator {
			break
		}
		switch {
		case b[0] == descPrimary && primary == nil:
			primary = b
		case b[0] == descSupplementary && joliet == nil && isJolietEscape(b[88:91]):
			joliet = b
		}
	}
	if primary == nil {
		// A High Sierra descriptor has its "CDROM" identifier at byte 9.
		if b, err := readSector(r, firstDescriptorSector); err == nil && string(b[9:14]) == "CDROM" {
			return nil, fmt.Errorf("a High Sierra volume: %w", ErrNotModelled)
		}
		return nil, ErrUnrecognized
	}
	active := primary
	if joliet != nil {
		active, v.joliet = joliet, true
	}
	v.blockSize = binary.LittleEndian.Uint16(active[128:130])
	if v.blockSize != SectorSize {
		return nil, diskCorrupt("logical block size %d; CDFS mounts only %d-byte blocks (CdUpdateVcbFromVolDescriptor)", v.blockSize, SectorSize)
	}
	v.pathTableSize = binary.LittleEndian.Uint32(active[132:136])
	v.pathTableLoc = binary.LittleEndian.Uint32(active[140:144])
	v.label = v.decodeLabel(active[40:72])
	root, err := parseRecord(active[156:190], "the volume descriptor's root directory record")
	if err != nil {
		return nil, err
	}
	v.root = root
	return v, nil
}

// isJolietEscape reports whether a supplementary descriptor's escape
// sequences name UCS-2 level 1, 2 or 3 (cddata.c CdJolietEscape).
func isJolietEscape(esc []byte) bool {
	for _, j := range []string{"%/@", "%/C", "%/E"} {
		if string(esc) == j {
			return true
		}
	}
	return false
}

// decodeLabel is the volume label CDFS reports: the volume identifier,
// UCS-2 on a Joliet volume, without trailing blanks and NULs
// (CdFindActiveVolDescriptor).
func (v *Volume) decodeLabel(b []byte) string {
	var s string
	if v.joliet {
		s = decodeUCS2(b)
	} else {
		s = decodeOEM(b)
	}
	return strings.TrimRight(s, " \x00")
}

func decodeUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// decodeOEM converts an ISO 9660 name as RtlOemToUnicodeN does with code
// page 437, the OEM code page of US English Windows.
func decodeOEM(b []byte) string {
	s, err := charmap.CodePage437.NewDecoder().Bytes(b)
	if err != nil {
		return string(b)
	}
	return string(s)
}

// decodeName decodes a name from the path table or a directory record.
func (v *Volume) decodeName(b []byte) (string, error) {
	if v.joliet {
		if len(b)%2 != 0 {
			// namesup.c CdConvertBigToLittleEndian.
			return "", diskCorrupt("Joliet name of odd length %d", len(b))
		}
		return decodeUCS2(b), nil
	}
	return decodeOEM(b), nil
}

// Label is the volume label Windows shows (GetVolumeInformation).
func (v *Volume) Label() string { return v.label }

// Joliet reports whether the Joliet supplementary descriptor is in use.
func (v *Volume) Joliet() bool { return v.joliet }

// UDF reports whether the medium carries a UDF volume recognition
// sequence; Windows would mount it with UDFS, not CDFS.
func (v *Volume) UDF() bool { return v.udf }

// PathTableSize is the size of the active descriptor's path table.
func (v *Volume) PathTableSize() uint32 { return v.pathTableSize }

// Describe says what CDFS mounted, for logs.
func (v *Volume) Describe() string {
	kind := "ISO 9660"
	if v.joliet {
		kind += " (Joliet)"
	}
	return fmt.Sprintf("%s, label %q, path table %d bytes at block %d", kind, v.label, v.pathTableSize, v.pathTableLoc)
}

// pathTableEntries parses the type L path table as CDFS walks it (pathsup.c
// CdLookupNextPathEntry, CdUpdatePathEntryFromRawPathEntry).
func (v *Volume) pathTableEntries() ([]pathEntry, error) {
	if v.pathTableParsed {
		return v.pathTable, v.pathTableErr
	}
	v.pathTableParsed = true
	v.pathTable, v.pathTableErr = v.parsePathTable()
	return v.pathTable, v.pathTableErr
}

func (v *Volume) parsePathTable() ([]pathEntry, error) {
	size := int(v.pathTableSize)
	if size == 0 {
		return nil, nil
	}
	data := make([]byte, size)
	if n, err := v.r.ReadAt(data, int64(v.pathTableLoc)*SectorSize); n != size {
		return nil, diskCorrupt("path table (%d bytes at block %d) cannot be read: %v", size, v.pathTableLoc, err)
	}
	const minEntry = 9 // 8 bytes of fields and a one-byte name
	var out []pathEntry
	for off := 0; off < size; {
		nameLen := int(data[off])
		if nameLen == 0 {
			// A zero-length name ends a table whose size is a whole number
			// of blocks (padded by some mastering tools); anywhere else it
			// is corruption.
			if size%SectorSize == 0 {
				break
			}
			return nil, diskCorrupt("path table entry %d at offset %d has an empty name", len(out)+1, off)
		}
		if size-off < minEntry || size-off < 8+nameLen {
			return nil, diskCorrupt("path table entry %d at offset %d runs past the table's %d bytes", len(out)+1, off, size)
		}
		e := pathEntry{
			extent: binary.LittleEndian.Uint32(data[off+2:]) + uint32(data[off+1]),
			parent: binary.LittleEndian.Uint16(data[off+6:]),
		}
		raw := data[off+8 : off+8+nameLen]
		if !(nameLen == 1 && raw[0] == 0) {
			name, err := v.decodeName(raw)
			if err != nil {
				return nil, err
			}
			// Directories carry no version; a trailing dot is dropped
			// (CdUpdatePathEntryName).
			e.name = strings.TrimSuffix(name, ".")
			e.upper = strings.ToUpper(e.name)
		}
		out = append(out, e)
		off += (8 + nameLen + 1) &^ 1
	}
	return out, nil
}

// hasUDF looks for a UDF volume recognition sequence (ECMA-167 2/8.3):
// "BEA01", then "NSR02" or "NSR03", among the descriptors after sector 16.
func hasUDF(r io.ReaderAt) bool {
	extended := false
	for i := int64(0); i < maxDescriptors; i++ {
		b, err := readSector(r, firstDescriptorSector+i)
		if err != nil {
			return false
		}
		id := string(b[1:6])
		switch id {
		case "BEA01":
			extended = true
		case "NSR02", "NSR03":
			if extended {
				return true
			}
		case "TEA01":
			extended = false
		case "CD001", "BOOT2", "CDW02":
		default:
			return false
		}
	}
	return false
}
