package installmedia

// A read-only reader for UDF (ECMA-167 as profiled by OSTA UDF 1.02 to
// 2.60) volumes on 2048-byte-sector optical media images. It reads what is
// needed to look files up by path and read their data: the volume
// recognition sequence, the anchor volume descriptor pointer, the partition
// and logical volume descriptors (type 1 and metadata partition maps), the
// file set descriptor, file entries and extended file entries with short,
// long or embedded allocation descriptors (and allocation extent
// descriptor chains), and file identifier descriptors with OSTA CS0 names.
// Sparable and virtual (VAT) partitions, used on rewritable and
// write-once discs but not in ISO images, are refused.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf16"
)

const (
	udfBlockSize = 2048

	// Descriptor tag identifiers (ECMA-167 3/7.2.1 and 4/7.2.1).
	tagPrimaryVolume     = 1
	tagAnchor            = 2
	tagVolumePointer     = 3
	tagImplementationUse = 4
	tagPartition         = 5
	tagLogicalVolume     = 6
	tagUnallocatedSpace  = 7
	tagTerminating       = 8
	tagFileSet           = 256
	tagFileIdentifier    = 257
	tagAllocationExtent  = 258
	tagIndirectEntry     = 259
	tagFileEntry         = 261
	tagExtendedFileEntry = 266

	// ICB file types (ECMA-167 4/14.6.6, UDF 2.50 2.3.5.2).
	fileTypeDirectory      = 4
	fileTypeRegular        = 5
	fileTypeMetadata       = 250
	fileTypeMetadataMirror = 251

	// File characteristics of a file identifier descriptor.
	fidDirectory = 0x02
	fidDeleted   = 0x04
	fidParent    = 0x08

	// Limits that keep damaged or hostile images from making the reader
	// loop or allocate without bound.
	maxVDSBlocks      = 512
	maxAEDChain       = 4096
	maxExtents        = 1 << 16
	maxDirectorySize  = 32 << 20
	maxPartitionMaps  = 64
	maxVRSDescriptors = 64
)

// udfErr marks errors found while reading the UDF structures.
func udfErr(format string, args ...any) error {
	return fmt.Errorf("UDF: "+format, args...)
}

// lbAddr is a recorded address: a logical block within a partition
// (identified by its partition reference number, the index of its map in
// the logical volume descriptor).
type lbAddr struct {
	block   uint32
	partRef uint16
}

// longAD is a long allocation descriptor.
type longAD struct {
	length  uint32 // in bytes, without the extent type bits
	kind    uint8  // extent type (top two bits of the length field)
	address lbAddr
}

func parseLongAD(b []byte) longAD {
	raw := binary.LittleEndian.Uint32(b[0:4])
	return longAD{
		length: raw & 0x3FFFFFFF,
		kind:   uint8(raw >> 30),
		address: lbAddr{
			block:   binary.LittleEndian.Uint32(b[4:8]),
			partRef: binary.LittleEndian.Uint16(b[8:10]),
		},
	}
}

// Extent types.
const (
	extentRecorded      = 0
	extentNotRecorded   = 1
	extentNotAllocated  = 2
	extentNextADsExtent = 3
)

// udfVolume is an opened UDF logical volume.
type udfVolume struct {
	r        io.ReaderAt
	size     int64
	parts    []io.ReaderAt // by partition reference number; byte offsets within the partition
	root     longAD
	revision uint16 // from the domain identifier, e.g. 0x0102
}

// kind describes the volume for messages: "UDF 1.02".
func (v *udfVolume) kind() string {
	if v.revision == 0 {
		return "UDF"
	}
	return fmt.Sprintf("UDF %x.%02x", v.revision>>8, v.revision&0xFF)
}

// crcITUT computes the CRC of descriptor tags (ECMA-167 3/7.2.6):
// polynomial x^16 + x^12 + x^5 + 1, initial value 0, most significant bit
// first.
func crcITUT(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// tagChecksum is the sum of the tag's bytes except the checksum byte.
func tagChecksum(b []byte) byte {
	var sum byte
	for i := 0; i < 16; i++ {
		if i != 4 {
			sum += b[i]
		}
	}
	return sum
}

// checkTag verifies a descriptor tag: identifier (when want >= 0),
// checksum, CRC (when the CRC'd length fits in b) and, when checkLoc is
// set, the recorded location. It returns the tag identifier.
func checkTag(b []byte, want int, location uint32, checkLoc bool) (uint16, error) {
	if len(b) < 16 {
		return 0, udfErr("descriptor truncated")
	}
	id := binary.LittleEndian.Uint16(b[0:2])
	if tagChecksum(b) != b[4] {
		if want >= 0 {
			return id, udfErr("no valid descriptor tag at block %d (want tag %d)", location, want)
		}
		return id, udfErr("no valid descriptor tag at block %d", location)
	}
	if want >= 0 && int(id) != want {
		return id, udfErr("block %d holds descriptor tag %d, want %d", location, id, want)
	}
	crcLen := int(binary.LittleEndian.Uint16(b[10:12]))
	if 16+crcLen <= len(b) {
		if crc := crcITUT(b[16 : 16+crcLen]); crc != binary.LittleEndian.Uint16(b[8:10]) {
			return id, udfErr("descriptor tag %d at block %d fails its CRC", id, location)
		}
	}
	if checkLoc {
		if loc := binary.LittleEndian.Uint32(b[12:16]); loc != location {
			return id, udfErr("descriptor tag %d read at block %d records location %d", id, location, loc)
		}
	}
	return id, nil
}

// readSector reads one 2048-byte sector of the image.
func readSector(r io.ReaderAt, sector int64) ([]byte, error) {
	buf := make([]byte, udfBlockSize)
	if _, err := r.ReadAt(buf, sector*udfBlockSize); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, udfErr("sector %d is beyond the end of the image", sector)
		}
		return nil, err
	}
	return buf, nil
}

// hasUDFRecognition reports whether the volume recognition sequence at
// byte 32768 holds an NSR02 or NSR03 descriptor, the mark of a UDF volume
// (ECMA-167 2/9.1, 3/9.1). The sequence ends at the first sector that is
// not a volume structure descriptor.
func hasUDFRecognition(r io.ReaderAt) bool {
	buf := make([]byte, 7)
	for i := int64(0); i < maxVRSDescriptors; i++ {
		if _, err := r.ReadAt(buf, 32768+i*udfBlockSize); err != nil {
			return false
		}
		switch string(buf[1:6]) {
		case "NSR02", "NSR03":
			return true
		case "BEA01", "TEA01", "CD001", "CDW02", "BOOT2":
		default:
			return false
		}
	}
	return false
}

// partitionDesc is a partition descriptor.
type partitionDesc struct {
	vdsn   uint32
	number uint16
	start  uint32
	length uint32
}

// logicalVolumeDesc is the part of a logical volume descriptor used here.
type logicalVolumeDesc struct {
	vdsn      uint32
	blockSize uint32
	revision  uint16
	fsd       longAD
	maps      []byte
	numMaps   uint32
}

// openUDF opens the UDF volume of an image, or returns an error saying why
// it cannot.
func openUDF(r io.ReaderAt, size int64) (*udfVolume, error) {
	if !hasUDFRecognition(r) {
		return nil, errNoUDF
	}
	var anchor []byte
	var anchorErr error
	candidates := []int64{256}
	if size > 0 {
		last := size/udfBlockSize - 1
		candidates = append(candidates, last, last-256)
	}
	for _, sector := range candidates {
		if sector < 256 {
			continue
		}
		b, err := readSector(r, sector)
		if err == nil {
			_, err = checkTag(b, tagAnchor, uint32(sector), true)
		}
		if err == nil {
			anchor = b
			break
		}
		if anchorErr == nil {
			anchorErr = err
		}
	}
	if anchor == nil {
		return nil, udfErr("no anchor volume descriptor pointer at sector 256 or at the end of the image: %v", anchorErr)
	}
	mainLen := binary.LittleEndian.Uint32(anchor[16:20])
	mainLoc := binary.LittleEndian.Uint32(anchor[20:24])
	reserveLen := binary.LittleEndian.Uint32(anchor[24:28])
	reserveLoc := binary.LittleEndian.Uint32(anchor[28:32])

	parts, lvd, err := readVDS(r, mainLoc, mainLen)
	if err != nil {
		var rerr error
		parts, lvd, rerr = readVDS(r, reserveLoc, reserveLen)
		if rerr != nil {
			return nil, fmt.Errorf("%w (reserve sequence: %v)", err, rerr)
		}
	}
	if lvd.blockSize != udfBlockSize {
		return nil, udfErr("logical block size is %d; only %d-byte blocks are supported", lvd.blockSize, udfBlockSize)
	}
	v := &udfVolume{r: r, size: size, revision: lvd.revision}
	if err := v.setupPartitions(parts, lvd); err != nil {
		return nil, err
	}
	if err := v.readFileSet(lvd.fsd); err != nil {
		return nil, err
	}
	return v, nil
}

var errNoUDF = errors.New("no UDF volume recognition sequence")

// readVDS reads a volume descriptor sequence and returns its partition
// descriptors (by partition number) and logical volume descriptor.
func readVDS(r io.ReaderAt, loc, length uint32) (map[uint16]partitionDesc, logicalVolumeDesc, error) {
	parts := map[uint16]partitionDesc{}
	var lvd logicalVolumeDesc
	haveLVD := false
	blocks := int64(length / udfBlockSize)
	sector := int64(loc)
	for seen := 0; blocks > 0 && seen < maxVDSBlocks; seen++ {
		b, err := readSector(r, sector)
		if err != nil {
			return nil, lvd, err
		}
		id, err := checkTag(b, -1, uint32(sector), true)
		if err != nil {
			break // an unrecorded or damaged block ends the sequence
		}
		switch id {
		case tagTerminating:
			blocks = 0
			continue
		case tagVolumePointer:
			sector = int64(binary.LittleEndian.Uint32(b[24:28]))
			blocks = int64(binary.LittleEndian.Uint32(b[20:24]) / udfBlockSize)
			continue
		case tagPartition:
			pd := partitionDesc{
				vdsn:   binary.LittleEndian.Uint32(b[16:20]),
				number: binary.LittleEndian.Uint16(b[22:24]),
				start:  binary.LittleEndian.Uint32(b[188:192]),
				length: binary.LittleEndian.Uint32(b[192:196]),
			}
			if old, ok := parts[pd.number]; !ok || pd.vdsn >= old.vdsn {
				parts[pd.number] = pd
			}
		case tagLogicalVolume:
			vdsn := binary.LittleEndian.Uint32(b[16:20])
			if haveLVD && vdsn < lvd.vdsn {
				break
			}
			mapLen := binary.LittleEndian.Uint32(b[264:268])
			if mapLen > udfBlockSize-440 {
				return nil, lvd, udfErr("logical volume descriptor has a %d-byte partition map table", mapLen)
			}
			domain := b[216:248]
			lvd = logicalVolumeDesc{
				vdsn:      vdsn,
				blockSize: binary.LittleEndian.Uint32(b[212:216]),
				fsd:       parseLongAD(b[248:264]),
				numMaps:   binary.LittleEndian.Uint32(b[268:272]),
				maps:      append([]byte(nil), b[440:440+mapLen]...),
			}
			if strings.HasPrefix(string(domain[1:24]), "*OSTA UDF Compliant") {
				lvd.revision = binary.LittleEndian.Uint16(domain[24:26])
			}
			haveLVD = true
		}
		sector++
		blocks--
	}
	if !haveLVD {
		return nil, lvd, udfErr("volume descriptor sequence at sector %d has no logical volume descriptor", loc)
	}
	if len(parts) == 0 {
		return nil, lvd, udfErr("volume descriptor sequence at sector %d has no partition descriptor", loc)
	}
	return parts, lvd, nil
}

// unsupportedPartition fails every read with the reason it is not
// supported, so that volumes that never touch it still work.
type unsupportedPartition struct{ reason string }

func (p unsupportedPartition) ReadAt([]byte, int64) (int, error) {
	return 0, udfErr("%s", p.reason)
}

// setupPartitions builds a reader for each partition map.
func (v *udfVolume) setupPartitions(pds map[uint16]partitionDesc, lvd logicalVolumeDesc) error {
	if lvd.numMaps == 0 || lvd.numMaps > maxPartitionMaps {
		return udfErr("logical volume has %d partition maps", lvd.numMaps)
	}
	physical := func(number uint16) (io.ReaderAt, error) {
		pd, ok := pds[number]
		if !ok {
			return nil, udfErr("partition map refers to partition %d, which has no partition descriptor", number)
		}
		return io.NewSectionReader(v.r, int64(pd.start)*udfBlockSize, int64(pd.length)*udfBlockSize), nil
	}
	type metaMap struct {
		ref                int
		number             uint16
		fileLoc, mirrorLoc uint32
	}
	var metas []metaMap
	physRefs := map[uint16]int{} // partition number -> reference of its type 1 map
	v.parts = make([]io.ReaderAt, lvd.numMaps)
	m := lvd.maps
	for ref := 0; ref < int(lvd.numMaps); ref++ {
		if len(m) < 2 || int(m[1]) < 2 || int(m[1]) > len(m) {
			return udfErr("partition map %d is truncated", ref)
		}
		entry := m[:m[1]]
		m = m[m[1]:]
		switch entry[0] {
		case 1:
			if len(entry) < 6 {
				return udfErr("type 1 partition map %d is %d bytes long", ref, len(entry))
			}
			number := binary.LittleEndian.Uint16(entry[4:6])
			p, err := physical(number)
			if err != nil {
				return err
			}
			v.parts[ref] = p
			if _, dup := physRefs[number]; !dup {
				physRefs[number] = ref
			}
		case 2:
			if len(entry) < 64 {
				return udfErr("type 2 partition map %d is %d bytes long", ref, len(entry))
			}
			ident := strings.TrimRight(string(entry[5:28]), "\x00")
			number := binary.LittleEndian.Uint16(entry[38:40])
			switch ident {
			case "*UDF Metadata Partition":
				metas = append(metas, metaMap{
					ref:       ref,
					number:    number,
					fileLoc:   binary.LittleEndian.Uint32(entry[40:44]),
					mirrorLoc: binary.LittleEndian.Uint32(entry[44:48]),
				})
			default:
				v.parts[ref] = unsupportedPartition{fmt.Sprintf("partition map %d is a %q partition, which this reader does not support (it is used on rewritable or write-once discs, not in ISO images)", ref, ident)}
			}
		default:
			return udfErr("partition map %d has unknown type %d", ref, entry[0])
		}
	}
	// Metadata partitions (UDF 2.50+) are the contents of the metadata
	// file, recorded in the physical partition they name. The mirror
	// file holds a copy.
	for _, mm := range metas {
		under, ok := physRefs[mm.number]
		if !ok {
			return udfErr("metadata partition map %d names partition %d, which has no type 1 partition map", mm.ref, mm.number)
		}
		var ferr error
		for _, loc := range []uint32{mm.fileLoc, mm.mirrorLoc} {
			f, err := v.readICB(longAD{length: udfBlockSize, address: lbAddr{block: loc, partRef: uint16(under)}})
			if err == nil && f.fileType != fileTypeMetadata && f.fileType != fileTypeMetadataMirror {
				err = udfErr("metadata file at block %d has file type %d", loc, f.fileType)
			}
			if err == nil {
				v.parts[mm.ref] = f.data
				ferr = nil
				break
			}
			if ferr == nil {
				ferr = err
			}
		}
		if ferr != nil {
			return fmt.Errorf("reading the metadata file of partition map %d: %w", mm.ref, ferr)
		}
	}
	return nil
}

// readBlock reads one logical block of a partition.
func (v *udfVolume) readBlock(a lbAddr) ([]byte, error) {
	if int(a.partRef) >= len(v.parts) || v.parts[a.partRef] == nil {
		return nil, udfErr("reference to partition %d, which the logical volume does not have", a.partRef)
	}
	buf := make([]byte, udfBlockSize)
	n, err := v.parts[a.partRef].ReadAt(buf, int64(a.block)*udfBlockSize)
	if n < len(buf) {
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, udfErr("block %d is beyond the end of partition %d", a.block, a.partRef)
		}
		return nil, err
	}
	return buf, nil
}

// readFileSet reads the file set descriptor and records the root
// directory.
func (v *udfVolume) readFileSet(fsd longAD) error {
	b, err := v.readBlock(fsd.address)
	if err != nil {
		return fmt.Errorf("reading the file set descriptor: %w", err)
	}
	if _, err := checkTag(b, tagFileSet, fsd.address.block, true); err != nil {
		return fmt.Errorf("reading the file set descriptor: %w", err)
	}
	v.root = parseLongAD(b[400:416])
	return nil
}

// udfFile is a file or directory read from its (extended) file entry.
type udfFile struct {
	fileType uint8
	size     int64
	data     *extentReader
}

// extent maps part of a file's data onto a partition.
type extent struct {
	fileOff int64
	length  int64
	sparse  bool
	addr    lbAddr
}

// extentReader reads file data through its extents.
type extentReader struct {
	v        *udfVolume
	size     int64
	extents  []extent
	embedded []byte // data recorded inside the file entry
}

func (e *extentReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if e.embedded != nil {
		if off >= int64(len(e.embedded)) {
			return 0, io.EOF
		}
		n := copy(p, e.embedded[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	total := 0
	for len(p) > 0 {
		if off >= e.size {
			return total, io.EOF
		}
		i := sort.Search(len(e.extents), func(i int) bool {
			return e.extents[i].fileOff+e.extents[i].length > off
		})
		if i == len(e.extents) {
			return total, udfErr("file data ends at byte %d, before its recorded size %d", off, e.size)
		}
		x := e.extents[i]
		within := off - x.fileOff
		n := int64(len(p))
		if n > x.length-within {
			n = x.length - within
		}
		if n > e.size-off {
			n = e.size - off
		}
		chunk := p[:n]
		if x.sparse {
			clear(chunk)
		} else {
			part := e.v.parts[x.addr.partRef]
			got, err := part.ReadAt(chunk, int64(x.addr.block)*udfBlockSize+within)
			if got < len(chunk) {
				if err == nil || err == io.EOF {
					err = udfErr("file data extent at block %d of partition %d runs past the partition's end", x.addr.block, x.addr.partRef)
				}
				return total + got, err
			}
		}
		total += int(n)
		off += n
		p = p[n:]
	}
	return total, nil
}

// readICB reads the file entry or extended file entry at an ICB address.
func (v *udfVolume) readICB(icb longAD) (*udfFile, error) {
	b, err := v.readBlock(icb.address)
	if err != nil {
		return nil, err
	}
	id, err := checkTag(b, -1, icb.address.block, true)
	if err != nil {
		return nil, err
	}
	var infoLen uint64
	var lEA, lAD uint32
	var adStart int
	switch id {
	case tagFileEntry:
		infoLen = binary.LittleEndian.Uint64(b[56:64])
		lEA = binary.LittleEndian.Uint32(b[168:172])
		lAD = binary.LittleEndian.Uint32(b[172:176])
		adStart = 176
	case tagExtendedFileEntry:
		infoLen = binary.LittleEndian.Uint64(b[56:64])
		lEA = binary.LittleEndian.Uint32(b[208:212])
		lAD = binary.LittleEndian.Uint32(b[212:216])
		adStart = 216
	case tagIndirectEntry:
		return nil, udfErr("ICB at block %d is an indirect entry (strategy 4096, write-once media), which this reader does not support", icb.address.block)
	default:
		return nil, udfErr("block %d holds descriptor tag %d, not a file entry", icb.address.block, id)
	}
	if uint64(lEA)+uint64(lAD)+uint64(adStart) > udfBlockSize {
		return nil, udfErr("file entry at block %d has %d bytes of extended attributes and %d of allocation descriptors, more than a block", icb.address.block, lEA, lAD)
	}
	if infoLen > 1<<50 {
		return nil, udfErr("file entry at block %d records an impossible size %d", icb.address.block, infoLen)
	}
	f := &udfFile{
		fileType: b[27],
		size:     int64(infoLen),
	}
	ads := b[adStart+int(lEA) : adStart+int(lEA)+int(lAD)]
	flags := binary.LittleEndian.Uint16(b[34:36])
	er := &extentReader{v: v, size: f.size}
	switch flags & 7 {
	case 0, 1:
		er.extents, err = v.collectExtents(ads, flags&7 == 1, icb.address.partRef)
		if err != nil {
			return nil, fmt.Errorf("file entry at block %d: %w", icb.address.block, err)
		}
	case 3:
		if infoLen > uint64(len(ads)) {
			return nil, udfErr("file entry at block %d embeds %d bytes but records a size of %d", icb.address.block, len(ads), infoLen)
		}
		er.embedded = append([]byte{}, ads[:infoLen]...)
	default:
		return nil, udfErr("file entry at block %d uses allocation descriptor type %d (extended), which UDF does not allow", icb.address.block, flags&7)
	}
	f.data = er
	return f, nil
}

// collectExtents walks short or long allocation descriptors, following
// allocation extent descriptors, into extents.
func (v *udfVolume) collectExtents(ads []byte, long bool, partRef uint16) ([]extent, error) {
	adSize := 8
	if long {
		adSize = 16
	}
	var out []extent
	var off int64
	chain := 0
	for {
		next := false
		for len(ads) >= adSize {
			var ad longAD
			if long {
				ad = parseLongAD(ads)
			} else {
				raw := binary.LittleEndian.Uint32(ads[0:4])
				ad = longAD{length: raw & 0x3FFFFFFF, kind: uint8(raw >> 30),
					address: lbAddr{block: binary.LittleEndian.Uint32(ads[4:8]), partRef: partRef}}
			}
			ads = ads[adSize:]
			if ad.length == 0 {
				return out, nil
			}
			if ad.kind == extentNextADsExtent {
				chain++
				if chain > maxAEDChain {
					return nil, udfErr("allocation extent descriptor chain is longer than %d", maxAEDChain)
				}
				b, err := v.readBlock(ad.address)
				if err != nil {
					return nil, err
				}
				if _, err := checkTag(b, tagAllocationExtent, ad.address.block, true); err != nil {
					return nil, err
				}
				l := binary.LittleEndian.Uint32(b[20:24])
				if l > udfBlockSize-24 || l > ad.length {
					return nil, udfErr("allocation extent descriptor at block %d records %d bytes of descriptors", ad.address.block, l)
				}
				ads = b[24 : 24+l]
				next = true
				break
			}
			if len(out) >= maxExtents {
				return nil, udfErr("file has more than %d extents", maxExtents)
			}
			out = append(out, extent{
				fileOff: off,
				length:  int64(ad.length),
				sparse:  ad.kind != extentRecorded,
				addr:    ad.address,
			})
			off += int64(ad.length)
		}
		if !next {
			return out, nil
		}
	}
}

// udfDirEntry is one entry of a directory.
type udfDirEntry struct {
	name  string
	isDir bool
	icb   longAD
}

// readDir parses the file identifier descriptors of a directory.
func (v *udfVolume) readDir(icb longAD) ([]udfDirEntry, error) {
	f, err := v.readICB(icb)
	if err != nil {
		return nil, err
	}
	if f.fileType != fileTypeDirectory {
		return nil, udfErr("ICB at block %d is not a directory (file type %d)", icb.address.block, f.fileType)
	}
	if f.size > maxDirectorySize {
		return nil, udfErr("directory at block %d is %d bytes, more than %d", icb.address.block, f.size, maxDirectorySize)
	}
	data := make([]byte, f.size)
	if _, err := f.data.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, err
	}
	var entries []udfDirEntry
	for len(data) > 0 {
		if len(data) < 38 {
			// Trailing padding is allowed only as zeros.
			if bytes.Count(data, []byte{0}) == len(data) {
				break
			}
			return nil, udfErr("directory at block %d ends with a truncated file identifier", icb.address.block)
		}
		if _, err := checkTag(data, tagFileIdentifier, 0, false); err != nil {
			return nil, fmt.Errorf("directory at block %d: %w", icb.address.block, err)
		}
		chars := data[18]
		lFI := int(data[19])
		lIU := int(binary.LittleEndian.Uint16(data[36:38]))
		total := (38 + lIU + lFI + 3) &^ 3
		if 38+lIU+lFI > len(data) {
			return nil, udfErr("directory at block %d has a file identifier running past its end", icb.address.block)
		}
		name := data[38+lIU : 38+lIU+lFI]
		e := udfDirEntry{isDir: chars&fidDirectory != 0, icb: parseLongAD(data[20:36])}
		if total > len(data) {
			total = len(data)
		}
		data = data[total:]
		if chars&(fidDeleted|fidParent) != 0 {
			continue
		}
		e.name, err = decodeCS0(name)
		if err != nil {
			return nil, fmt.Errorf("directory at block %d: %w", icb.address.block, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// decodeCS0 decodes an OSTA CS0 compressed Unicode string: a compression
// ID (8 or 254: one byte a character; 16 or 255: big-endian UTF-16) and the
// characters.
func decodeCS0(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	switch b[0] {
	case 8, 254:
		runes := make([]rune, len(b)-1)
		for i, c := range b[1:] {
			runes[i] = rune(c)
		}
		return string(runes), nil
	case 16, 255:
		if (len(b)-1)%2 != 0 {
			return "", udfErr("16-bit CS0 name has an odd length %d", len(b)-1)
		}
		units := make([]uint16, (len(b)-1)/2)
		for i := range units {
			units[i] = binary.BigEndian.Uint16(b[1+2*i:])
		}
		return string(utf16.Decode(units)), nil
	}
	return "", udfErr("file name has unknown CS0 compression ID %d", b[0])
}

// lookupDir finds the entry called name (case-insensitively) in a
// directory.
func (v *udfVolume) lookup(dir longAD, name string) (udfDirEntry, bool, error) {
	entries, err := v.readDir(dir)
	if err != nil {
		return udfDirEntry{}, false, err
	}
	for _, e := range entries {
		if e.name == name {
			return e, true, nil
		}
	}
	for _, e := range entries {
		if strings.EqualFold(e.name, name) {
			return e, true, nil
		}
	}
	return udfDirEntry{}, false, nil
}

// walk resolves a slash-separated path to a directory entry; the entry's
// name becomes the path as recorded.
func (v *udfVolume) walk(path string) (udfDirEntry, bool, error) {
	cur := udfDirEntry{isDir: true, icb: v.root}
	var recorded []string
	for _, part := range strings.Split(path, "/") {
		if part == "" {
			continue
		}
		if !cur.isDir {
			return udfDirEntry{}, false, nil
		}
		e, ok, err := v.lookup(cur.icb, part)
		if err != nil || !ok {
			return udfDirEntry{}, ok, err
		}
		cur = e
		recorded = append(recorded, e.name)
	}
	cur.name = strings.Join(recorded, "/")
	return cur, true, nil
}

// open implements volume.
func (v *udfVolume) open(path string) (*mediaFile, error) {
	e, ok, err := v.walk(path)
	if err != nil {
		return nil, err
	}
	if !ok || e.isDir {
		return nil, nil
	}
	f, err := v.readICB(e.icb)
	if err != nil {
		return nil, err
	}
	if f.fileType == fileTypeDirectory {
		return nil, nil
	}
	return &mediaFile{path: e.name, r: f.data, size: f.size}, nil
}

// list implements volume.
func (v *udfVolume) list(path string) ([]string, error) {
	e, ok, err := v.walk(path)
	if err != nil || !ok || !e.isDir {
		return nil, err
	}
	entries, err := v.readDir(e.icb)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.isDir {
			names = append(names, e.name+"/")
		} else {
			names = append(names, e.name)
		}
	}
	return names, nil
}
