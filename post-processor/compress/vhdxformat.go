package compress

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unicode/utf16"

	"github.com/google/uuid"

	"github.com/winbake/packer-plugin-winbake/version"
)

// A dynamic VHDX written from Go, following Microsoft's [MS-VHDX] "Virtual
// Hard Disk v2 (VHDX) File Format" (section numbers below are its) and
// what QEMU's block/vhdx.c reads and writes (vhdx_open, vhdx_co_create):
// version 1, an empty log, the BAT and metadata regions, and a payload
// block for every block of the guest disk that holds a non-zero byte.
// Every other payload block is PAYLOAD_BLOCK_ZERO, which reads as zeros
// (§2.5.1.1; NOT_PRESENT would leave the contents undefined in a dynamic
// disk), as qemu-img's block_state_zero default writes them.
//
// The file is laid out as
//
//	header section (1 MiB) | log (1 MiB) | BAT | metadata (1 MiB) | payload blocks in guest order
//
// which is everything qemu-img writes, in its order, without the 5 MiB it
// leaves free before the first block. The BAT holds the file offset of
// every stored block, so which blocks are stored is settled first, in a
// pass that reads a data block only up to its first non-zero byte. Then the
// file is written from start to end in one pass and hashed as it is
// written: no read-back.
const (
	vhdxMiB = 1 << 20

	// §2.1, §2.2: the header section holds the file type identifier, two
	// headers and two region tables, each in its own 64 KiB.
	vhdxHeaderSection      = 1 << 20
	vhdxHeader1Offset      = 64 << 10
	vhdxHeader2Offset      = 128 << 10
	vhdxRegionTable1Offset = 192 << 10
	vhdxRegionTable2Offset = 256 << 10
	vhdxHeaderSize         = 4 << 10  // §2.2.2: the checksum covers 4 KiB
	vhdxRegionTableSize    = 64 << 10 // §2.2.3: the checksum covers 64 KiB
	vhdxCreatorMaxChars    = 256      // §2.2.1: Creator, UTF-16

	// §2.3: the log, right after the header section, 1 MiB aligned and at
	// least 1 MiB (QEMU's DEFAULT_LOG_SIZE); a zero LogGuid says it holds
	// nothing to replay.
	vhdxLogOffset = vhdxHeaderSection
	vhdxLogLength = 1 << 20

	vhdxBATOffset = vhdxLogOffset + vhdxLogLength

	// §2.6: the metadata region, its table in the first 64 KiB and the
	// items after it. 1 MiB is the smallest region (QEMU writes that too).
	vhdxMetadataLength      = 1 << 20
	vhdxMetadataItemsOffset = 64 << 10

	// §2.6.2.4, §2.6.2.5: QEMU only opens 512-byte logical sectors and
	// writes 512 as the physical sector size too.
	vhdxLogicalSectorSize  = 512
	vhdxPhysicalSectorSize = 512

	// §2.6.2.2: at most 64 TiB.
	vhdxMaxVirtualSize = 64 << 40

	// §2.4: a sector bitmap block describes 2^23 sectors; the chunk ratio
	// is how many payload blocks that is.
	vhdxSectorsPerBitmapBlock = 1 << 23

	// §2.5.1.1 payload block states.
	vhdxPayloadBlockZero         = 2
	vhdxPayloadBlockFullyPresent = 6

	// §2.6.1.2 metadata entry flags.
	vhdxMetaIsVirtualDisk = 1 << 1
	vhdxMetaIsRequired    = 1 << 2

	// §2.2.3.2: the BAT and metadata regions are required.
	vhdxRegionRequired = 1

	// vhdxPieceSize is how much of a payload block one worker reads, and
	// one write writes, at a time (at most a block): small enough that
	// hashing one piece overlaps reading and writing others, large enough
	// for few, long disk writes. bench-compress: 2, 4, 8, 16 and 32 MiB
	// pieces, 6 to 24 of them, 1 to 3 writers all ran within its noise of
	// each other (2.0-2.4 s), 16 MiB x 6 x 2 at its low end.
	vhdxPieceSize = 16 << 20
	// vhdxPieces is how many pieces are read ahead of the hashing and the
	// writes (96 MiB of buffers).
	vhdxPieces = 6
	// vhdxRunSize is the granularity at which all-zero parts of a stored
	// block are left as holes in the file instead of written.
	vhdxRunSize = 64 << 10
	// vhdxWriters is how many writes are under way at once: two keep a
	// disk busy while the next one is prepared.
	vhdxWriters = 2
)

// GUIDs of the known regions (§2.2.3.2) and metadata items (§2.6.2).
var (
	vhdxRegionBAT          = msGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	vhdxRegionMetadata     = msGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxItemFileParameters = msGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	vhdxItemVirtualSize    = msGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	vhdxItemVirtualDiskID  = msGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	vhdxItemLogicalSector  = msGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	vhdxItemPhysicalSector = msGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// msGUID returns a GUID in the byte order [MS-DTYP] §2.3.4.2 gives it on
// disk: Data1, Data2 and Data3 little-endian, Data4 as written.
func msGUID(s string) [16]byte {
	return msGUIDBytes(uuid.MustParse(s))
}

func msGUIDBytes(u uuid.UUID) [16]byte {
	g := [16]byte(u)
	g[0], g[1], g[2], g[3] = g[3], g[2], g[1], g[0]
	g[4], g[5] = g[5], g[4]
	g[6], g[7] = g[7], g[6]
	return g
}

// vhdxDefaultBlockSize is qemu-img's block size for a dynamic VHDX of the
// given virtual size (block/vhdx.c, vhdx_co_create): 8 MiB up to 1 GiB,
// 16 MiB up to 100 GiB, 32 MiB up to 32 TiB, then 64 MiB. The same block
// size stores the same blocks, so the file is no larger than qemu-img's.
func vhdxDefaultBlockSize(size int64) int64 {
	switch {
	case size > 32<<40:
		return 64 << 20
	case size > 100<<30:
		return 32 << 20
	case size > 1<<30:
		return 16 << 20
	default:
		return 8 << 20
	}
}

// vhdxGeometry holds the sizes and offsets that follow from the virtual
// size and the block size.
type vhdxGeometry struct {
	size       int64 // virtual disk size
	blockSize  int64
	blocks     int64 // payload blocks
	chunkRatio int64 // payload blocks per sector bitmap block
	batEntries int64
	batLength  int64
	metaOffset int64
	dataOffset int64 // first payload block
}

func newVHDXGeometry(size, blockSize int64) (vhdxGeometry, error) {
	// §2.6.2.1: a power of two from 1 MiB to 256 MiB.
	if blockSize < 1<<20 || blockSize > 256<<20 || blockSize&(blockSize-1) != 0 {
		return vhdxGeometry{}, fmt.Errorf("vhdx block size %d: a power of two from 1 MiB to 256 MiB", blockSize)
	}
	if size <= 0 || size%vhdxLogicalSectorSize != 0 || size > vhdxMaxVirtualSize {
		return vhdxGeometry{}, fmt.Errorf("vhdx virtual size %d: a multiple of %d bytes, at most 64 TiB", size, vhdxLogicalSectorSize)
	}
	g := vhdxGeometry{size: size, blockSize: blockSize}
	g.blocks = (size + blockSize - 1) / blockSize
	g.chunkRatio = vhdxSectorsPerBitmapBlock * vhdxLogicalSectorSize / blockSize
	// §2.5: in a dynamic VHDX the last BAT entry is the last payload
	// block's; a sector bitmap entry follows every chunkRatio payload
	// entries before it.
	g.batEntries = g.blocks + (g.blocks-1)/g.chunkRatio
	g.batLength = alignUp(g.batEntries*8, vhdxMiB)
	g.metaOffset = vhdxBATOffset + g.batLength
	g.dataOffset = g.metaOffset + vhdxMetadataLength
	return g, nil
}

// dataBlocks returns the payload blocks some data extent of layout
// touches: the others are zeros.
func (g vhdxGeometry) dataBlocks(layout *diskLayout) []int64 {
	var blocks []int64
	for i := range g.blocks {
		if layout.hasData(i*g.blockSize, g.blockSize) {
			blocks = append(blocks, i)
		}
	}
	return blocks
}

// guestBytes is how many bytes of the virtual disk payload block i holds:
// the last block may reach past its end.
func (g vhdxGeometry) guestBytes(i int64) int64 { return min(g.blockSize, g.size-i*g.blockSize) }

// batIndex is the BAT entry of payload block i (§2.5).
func (g vhdxGeometry) batIndex(i int64) int64 { return i + i/g.chunkRatio }

// vhdxIDs are the identifiers a new file gets: random, as qemu-img and
// Hyper-V make them.
type vhdxIDs struct {
	fileWrite, dataWrite, virtualDisk [16]byte
}

func newVHDXIDs() (vhdxIDs, error) {
	var ids vhdxIDs
	for _, g := range []*[16]byte{&ids.fileWrite, &ids.dataWrite, &ids.virtualDisk} {
		u, err := uuid.NewRandom()
		if err != nil {
			return vhdxIDs{}, fmt.Errorf("vhdx: generating a GUID: %w", err)
		}
		*g = msGUIDBytes(u)
	}
	return ids, nil
}

// prefix returns everything before the first payload block: the header
// section, the log, the BAT with stored[i] telling whether payload block
// i is stored (the k-th stored one at dataOffset + k*blockSize), and the
// metadata region.
func (g vhdxGeometry) prefix(stored []bool, ids vhdxIDs) []byte {
	le := binary.LittleEndian
	p := make([]byte, g.dataOffset)

	// §2.2.1 File Type Identifier: the signature and who wrote the file.
	copy(p, "vhdxfile")
	creator := utf16.Encode([]rune("winbake " + version.Version))
	for i, c := range creator[:min(len(creator), vhdxCreatorMaxChars-1)] {
		le.PutUint16(p[8+2*i:], c)
	}

	// §2.2.2 Headers: the same header twice. Sequence numbers 1 and 2 make
	// the second current, as qemu-img's consecutive ones do; equal numbers
	// would leave no current header ("If there is no current header, then
	// the VHDX file is corrupt").
	for i, off := range []int{vhdxHeader1Offset, vhdxHeader2Offset} {
		h := p[off : off+vhdxHeaderSize]
		copy(h, "head")
		le.PutUint64(h[8:], uint64(i+1))
		copy(h[16:], ids.fileWrite[:])
		copy(h[32:], ids.dataWrite[:])
		// 48-63 LogGuid zero: the log is empty. 64 LogVersion 0.
		le.PutUint16(h[66:], 1) // Version
		le.PutUint32(h[68:], vhdxLogLength)
		le.PutUint64(h[72:], vhdxLogOffset)
		le.PutUint32(h[4:], crc32.Checksum(h, castagnoli))
	}

	// §2.2.3 Region Table, twice: the BAT and the metadata region.
	for _, off := range []int{vhdxRegionTable1Offset, vhdxRegionTable2Offset} {
		t := p[off : off+vhdxRegionTableSize]
		copy(t, "regi")
		le.PutUint32(t[8:], 2) // EntryCount
		for k, r := range []struct {
			guid     [16]byte
			off, len int64
		}{
			{vhdxRegionBAT, vhdxBATOffset, g.batLength},
			{vhdxRegionMetadata, g.metaOffset, vhdxMetadataLength},
		} {
			e := t[16+32*k:]
			copy(e, r.guid[:])
			le.PutUint64(e[16:], uint64(r.off))
			le.PutUint32(e[24:], uint32(r.len))
			le.PutUint32(e[28:], vhdxRegionRequired)
		}
		le.PutUint32(t[4:], crc32.Checksum(t, castagnoli))
	}

	// §2.5 BAT: FileOffsetMB in bits 20-63, the state in bits 0-2; sector
	// bitmap entries stay SB_BLOCK_NOT_PRESENT (0), and ZERO blocks'
	// FileOffsetMB 0 (QEMU: Hyper-V refuses anything else).
	bat := p[vhdxBATOffset : vhdxBATOffset+g.batLength]
	next := g.dataOffset
	for i := int64(0); i < g.blocks; i++ {
		entry := uint64(vhdxPayloadBlockZero)
		if stored[i] {
			entry = uint64(next) | vhdxPayloadBlockFullyPresent
			next += g.blockSize
		}
		le.PutUint64(bat[g.batIndex(i)*8:], entry)
	}

	// §2.6.1 Metadata table and §2.6.2 the items every VHDX has, packed
	// from 64 KiB on (as qemu-img packs them).
	m := p[g.metaOffset : g.metaOffset+vhdxMetadataLength]
	copy(m, "metadata")
	items := []struct {
		guid  [16]byte
		flags uint32
		data  []byte
	}{
		// BlockSize; LeaveBlockAllocated and HasParent clear: dynamic.
		{vhdxItemFileParameters, vhdxMetaIsRequired, le.AppendUint32(le.AppendUint32(nil, uint32(g.blockSize)), 0)},
		{vhdxItemVirtualSize, vhdxMetaIsVirtualDisk | vhdxMetaIsRequired, le.AppendUint64(nil, uint64(g.size))},
		{vhdxItemVirtualDiskID, vhdxMetaIsVirtualDisk | vhdxMetaIsRequired, ids.virtualDisk[:]},
		{vhdxItemLogicalSector, vhdxMetaIsVirtualDisk | vhdxMetaIsRequired, le.AppendUint32(nil, vhdxLogicalSectorSize)},
		{vhdxItemPhysicalSector, vhdxMetaIsVirtualDisk | vhdxMetaIsRequired, le.AppendUint32(nil, vhdxPhysicalSectorSize)},
	}
	le.PutUint16(m[10:], uint16(len(items)))
	at := vhdxMetadataItemsOffset
	for k, it := range items {
		e := m[32+32*k:]
		copy(e, it.guid[:])
		le.PutUint32(e[16:], uint32(at))
		le.PutUint32(e[20:], uint32(len(it.data)))
		le.PutUint32(e[24:], it.flags)
		at += copy(m[at:], it.data)
	}
	return p
}
