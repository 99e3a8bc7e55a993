package compress

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"unicode/utf16"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
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

// vhdxOptions choose how the image is written.
type vhdxOptions struct {
	blockSize int64 // 0: qemu-img's default for the virtual size
	workers   int
	// progress counts the guest bytes of the blocks data extents touch
	// (vhdxGeometry.dataBlocks) as each one is settled or written.
	progress func(n int64)
}

// writeVHDX writes the guest bytes of layout to the file f as a dynamic
// VHDX image, and returns the image's SHA-256 and size. f must be empty.
func writeVHDX(ctx context.Context, layout *diskLayout, f *os.File, opts vhdxOptions) (string, int64, error) {
	if opts.blockSize == 0 {
		opts.blockSize = vhdxDefaultBlockSize(layout.size)
	}
	geo, err := newVHDXGeometry(layout.size, opts.blockSize)
	if err != nil {
		return "", 0, err
	}
	opts.workers = max(opts.workers, 1)
	ids, err := newVHDXIDs()
	if err != nil {
		return "", 0, err
	}
	stored, err := storedBlocks(ctx, layout, geo, opts)
	if err != nil {
		return "", 0, err
	}
	v := &vhdxBuilder{geo: geo, layout: layout, file: f, opts: opts}
	return v.write(ctx, geo.prefix(stored, ids), stored)
}

// storedBlocks reports, for each payload block, whether it holds a
// non-zero byte. Blocks no data extent touches are zero without reading;
// the others are read until their first non-zero byte, in pieces growing
// from 4 KiB, so a block of data costs a few KiB and only zeros are read
// whole.
func storedBlocks(ctx context.Context, layout *diskLayout, geo vhdxGeometry, opts vhdxOptions) ([]bool, error) {
	stored := make([]bool, geo.blocks)
	candidates := geo.dataBlocks(layout)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int64)
	var wg sync.WaitGroup
	for range min(opts.workers, len(candidates)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for i := range next {
				ok, err := nonZero(layout, i*geo.blockSize, geo.guestBytes(i), buf)
				if err != nil {
					cancel(err)
					continue
				}
				stored[i] = ok // each worker writes its own blocks
				if !ok && opts.progress != nil {
					opts.progress(geo.guestBytes(i))
				}
			}
		}()
	}
feed:
	for _, i := range candidates {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return stored, nil
}

// nonZero reports whether any of the n guest bytes at off is not zero.
func nonZero(layout *diskLayout, off, n int64, buf []byte) (bool, error) {
	step := int64(4 << 10)
	for pos, end := off, off+n; pos < end; {
		if !layout.hasData(pos, end-pos) {
			return false, nil
		}
		k := min(step, end-pos)
		zero, err := layout.readAt(buf[:k], pos)
		if err != nil || !zero {
			return !zero, err
		}
		pos += k
		step = min(2*step, int64(len(buf)))
	}
	return false, nil
}

// vhdxBuilder writes the file in order: the prefix, then the stored
// blocks in pieces. Workers get each piece ready, the hashing takes them in
// file order on one goroutine, and writers write them on others.
//
// A piece whose data extents are 4 KiB aligned is not copied: it is hashed
// and written straight from the input file's pages, mapped into memory
// (the worker only faults them in). On bench-compress that left the
// hashing alone on its core at full speed: 1.9 s for 3 GiB, against 2.1 s
// when a worker copied every piece into a buffer first. Other pieces (a
// last block that is not 4 KiB aligned, qcow2 clusters under 4 KiB) are
// copied into a page-aligned buffer, which direct I/O can write.
type vhdxBuilder struct {
	geo    vhdxGeometry
	layout *diskLayout
	file   *os.File
	opts   vhdxOptions
	input  []byte // the input file, mapped; nil when it cannot be
}

// vhdxPiece is part of a stored payload block.
type vhdxPiece struct {
	guest, at int64 // guest offset, file offset
	n         int
	buf       []byte        // the piece, copied; or
	segs      []vhdxSegment // its parts, in the mapped input or zeros
	err       error
	done      chan struct{}
}

// vhdxSegment is a run of a piece: data in the mapped input, or zeros.
type vhdxSegment struct {
	off  int    // in the piece
	n    int    // bytes
	data []byte // nil: zeros
}

// vhdxDirectAlign is the alignment direct I/O asks of a write's offset,
// length and memory on the disks it runs on (their logical sector, 4 KiB
// at most).
const vhdxDirectAlign = 4 << 10

func (v *vhdxBuilder) write(ctx context.Context, prefix []byte, stored []bool) (string, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := sha256.New()
	h.Write(prefix)
	if err := v.writePrefix(prefix); err != nil {
		return "", 0, err
	}
	if fi, err := v.layout.file.Stat(); err == nil && fi.Size() > 0 {
		if m, err := unix.Mmap(int(v.layout.file.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			v.input = m
			defer func() { _ = unix.Munmap(m) }()
		}
	}

	pieceSize := min(int64(vhdxPieceSize), v.geo.blockSize)
	// Page-aligned buffers, which direct I/O needs, reused throughout; a
	// mapped piece holds one too, which bounds the pieces under way.
	pool, err := unix.Mmap(-1, 0, vhdxPieces*int(pieceSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return "", 0, fmt.Errorf("allocating %d MiB of buffers: %w", int64(vhdxPieces)*pieceSize>>20, err)
	}
	// Unmapped once every goroutine below is done with it.
	defer func() { _ = unix.Munmap(pool) }()
	free := make(chan []byte, vhdxPieces)
	for i := range int64(vhdxPieces) {
		free <- pool[i*pieceSize : (i+1)*pieceSize : (i+1)*pieceSize]
	}
	ordered := make(chan *vhdxPiece, vhdxPieces)
	jobs := make(chan *vhdxPiece, vhdxPieces)
	written := make(chan *vhdxPiece, vhdxPieces)

	// The feeder hands out pieces in file order, each with a buffer: the
	// piece the hashing waits for always has one.
	go func() {
		defer close(ordered)
		defer close(jobs)
		at := v.geo.dataOffset
		for i, ok := range stored {
			if !ok {
				continue
			}
			for off := int64(0); off < v.geo.blockSize; off += pieceSize {
				var buf []byte
				select {
				case buf = <-free:
				case <-ctx.Done():
					return
				}
				p := &vhdxPiece{guest: int64(i)*v.geo.blockSize + off, at: at + off, n: int(pieceSize), buf: buf, done: make(chan struct{})}
				ordered <- p // never blocks: at most vhdxPieces buffers are out
				jobs <- p
			}
			at += v.geo.blockSize
		}
	}()
	var workers sync.WaitGroup
	for range v.opts.workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for p := range jobs {
				p.err = v.prepare(p)
				close(p.done)
			}
		}()
	}
	var writers sync.WaitGroup
	for range vhdxWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for p := range written {
				if ctx.Err() == nil {
					if err := guardFault(v.layout.file.Name(), func() error { return v.writePiece(p) }); err != nil {
						cancel(err)
					} else if v.opts.progress != nil {
						v.opts.progress(max(0, min(int64(p.n), v.geo.size-p.guest)))
					}
				}
				free <- p.buf
			}
		}()
	}

	err = guardFault(v.layout.file.Name(), func() error { return v.hashInOrder(ctx, h, ordered, written) })
	close(written)
	writers.Wait()
	if err == nil {
		err = context.Cause(ctx) // a write failed, or the caller cancelled
	}
	cancel(nil)
	for p := range ordered { // let the feeder finish
		<-p.done
	}
	workers.Wait()
	if err != nil {
		return "", 0, err
	}
	size := v.geo.dataOffset + v.geo.blockSize*int64(countTrue(stored))
	// Zero runs at the end were not written.
	if err := v.file.Truncate(size); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// prepare gets a piece ready to hash and write: its segments in the mapped
// input, faulted in, when every data segment is aligned for direct I/O and
// inside the file; else its bytes copied into its buffer.
func (v *vhdxBuilder) prepare(p *vhdxPiece) error {
	if segs, ok := v.segments(p.guest, p.n); ok {
		for _, s := range segs {
			if s.data != nil {
				if err := populate(s.data); err != nil {
					return fmt.Errorf("reading %s: %w", v.layout.file.Name(), err)
				}
			}
		}
		p.segs = segs
		return nil
	}
	// Past the virtual size, readAt reads zeros.
	_, err := v.layout.readAt(p.buf[:p.n], p.guest)
	p.segs = nil
	return err
}

// segments splits the n guest bytes at off into runs of data in the mapped
// input and runs of zeros. It reports false when there is no mapping or a
// data run is not 4 KiB aligned (in the guest, in the file, in length) or
// reaches past the end of the file.
func (v *vhdxBuilder) segments(off int64, n int) ([]vhdxSegment, bool) {
	if v.input == nil {
		return nil, false
	}
	d := v.layout
	end := off + int64(n)
	var segs []vhdxSegment
	pos := off
	i := sort.Search(len(d.extents), func(i int) bool { return d.extents[i].end() > off })
	for ; i < len(d.extents) && d.extents[i].start < end; i++ {
		e := d.extents[i]
		from, to := max(e.start, off), min(e.end(), end)
		host := e.host + (from - e.start)
		if from%vhdxDirectAlign != 0 || host%vhdxDirectAlign != 0 || (to-from)%vhdxDirectAlign != 0 || host+(to-from) > int64(len(v.input)) {
			return nil, false
		}
		if from > pos {
			segs = append(segs, vhdxSegment{off: int(pos - off), n: int(from - pos)})
		}
		segs = append(segs, vhdxSegment{off: int(from - off), n: int(to - from), data: v.input[host : host+(to-from)]})
		pos = to
	}
	if pos < end {
		segs = append(segs, vhdxSegment{off: int(pos - off), n: int(end - pos)})
	}
	return segs, true
}

// populate faults in the pages of a mapped range, so that neither the
// hashing nor a write stops for them.
func populate(b []byte) error {
	err := unix.Madvise(b, unix.MADV_POPULATE_READ)
	if errors.Is(err, unix.EINVAL) {
		// Before Linux 5.14: touch a byte of every page.
		var sum byte
		for i := 0; i < len(b); i += 4096 {
			sum += b[i]
		}
		_ = sum
		return nil
	}
	return err
}

// hashInOrder hashes the pieces in file order as the workers finish them
// and passes each on to be written.
func (v *vhdxBuilder) hashInOrder(ctx context.Context, h hash.Hash, ordered <-chan *vhdxPiece, written chan<- *vhdxPiece) error {
	for p := range ordered {
		select {
		case <-p.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if p.err != nil {
			return p.err
		}
		if p.segs == nil {
			h.Write(p.buf[:p.n])
		}
		for _, s := range p.segs {
			if s.data != nil {
				h.Write(s.data)
				continue
			}
			for left := s.n; left > 0; left -= len(zeroPage) {
				h.Write(zeroPage[:min(left, len(zeroPage))])
			}
		}
		written <- p
	}
	return context.Cause(ctx)
}

// writePiece writes a piece's data, leaving zeros as holes.
func (v *vhdxBuilder) writePiece(p *vhdxPiece) error {
	if p.segs == nil {
		return v.writeRuns(p.buf[:p.n], p.at)
	}
	for _, s := range p.segs {
		if s.data != nil {
			if err := v.writeRuns(s.data, p.at+int64(s.off)); err != nil {
				return err
			}
			// Unmapped from this process: the pages stay in the page
			// cache, and an input larger than memory is not held mapped.
			_ = unix.Madvise(s.data, unix.MADV_DONTNEED)
		}
	}
	return nil
}

// guardFault runs f, turning a fault on the mapped input (the file
// truncated while it is read) into an error instead of a crash.
func guardFault(name string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// A fault's panic carries the address (runtime/debug).
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("reading %s: the file changed while it was read (%v)", name, r)
		}
	}()
	return f()
}

// writePrefix writes what comes before the payload blocks, the first
// write to the file.
func (v *vhdxBuilder) writePrefix(prefix []byte) error {
	buf, err := unix.Mmap(-1, 0, len(prefix), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("allocating %d MiB for the vhdx tables: %w", len(prefix)>>20, err)
	}
	defer func() { _ = unix.Munmap(buf) }()
	copy(buf, prefix)
	return retryBuffered(v.file, func() error { return v.writeRuns(buf, 0) })
}

// retryBuffered runs write, and when it fails with EINVAL on a file open
// for direct I/O (a file system that takes the flag but not the writes),
// turns direct I/O off and runs it again.
func retryBuffered(f *os.File, write func() error) error {
	err := write()
	if !errors.Is(err, unix.EINVAL) {
		return err
	}
	flags, ferr := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if ferr != nil || flags&unix.O_DIRECT == 0 {
		return err
	}
	if _, ferr := unix.FcntlInt(f.Fd(), unix.F_SETFL, flags&^unix.O_DIRECT); ferr != nil {
		return fmt.Errorf("%w (and turning direct I/O off: %v)", err, ferr)
	}
	return write()
}

// writeRuns writes b at off, leaving its all-zero runs of vhdxRunSize as
// holes (the file reads zeros there).
func (v *vhdxBuilder) writeRuns(b []byte, off int64) error {
	for start := 0; start < len(b); {
		for start < len(b) && isZero(b[start:min(start+vhdxRunSize, len(b))]) {
			start += vhdxRunSize
		}
		end := start
		for end < len(b) && !isZero(b[end:min(end+vhdxRunSize, len(b))]) {
			end += vhdxRunSize
		}
		end = min(end, len(b))
		if start >= end {
			break
		}
		if _, err := v.file.WriteAt(b[start:end], off+int64(start)); err != nil {
			return fmt.Errorf("writing %s at %d: %w", v.file.Name(), off+int64(start), err)
		}
		start = end
	}
	return nil
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// writeVHDXGo writes a vhdx output from Go when the input's guest bytes
// can be read from its file (raw, or qcow2 without compressed clusters,
// backing file or external data file) and its virtual size is whole
// 512-byte sectors. It reports false, having written nothing, when the
// output is left to qemu-img.
func (w *writer) writeVHDXGo() (bool, error) {
	if w.info.VirtualSize%vhdxLogicalSectorSize != 0 {
		// qemu-img rounds the size up to a sector (vhdx_co_create_opts).
		return false, nil
	}
	if w.info.VirtualSize > vhdxMaxVirtualSize {
		return true, fmt.Errorf("vhdx: the disk is %s, VHDX holds at most 64 TiB", progress.Bytes(w.info.VirtualSize))
	}
	layout, ok, err := readLayout(w.ctx, w.src, w.info)
	if err != nil || !ok {
		return false, err
	}
	defer func() { _ = layout.Close() }()
	workers := runtime.GOMAXPROCS(0)
	geo, err := newVHDXGeometry(layout.size, vhdxDefaultBlockSize(layout.size))
	if err != nil {
		return true, err
	}
	var total int64
	for _, i := range geo.dataBlocks(layout) {
		total += geo.guestBytes(i)
	}
	w.ui.Say(fmt.Sprintf("Writing vhdx (dynamic, %s blocks, %d cores) from the %s of data in %s (%s virtual)...",
		progress.Bytes(geo.blockSize), workers, progress.Bytes(layout.dataBytes()), filepath.Base(w.src), progress.Bytes(layout.size)))

	// Not O_TRUNC: tempPath made the file empty, and truncating a file to
	// zero makes ext4 (auto_da_alloc) start writing all of it back on
	// close. Direct I/O (as `qemu-img convert -t none` writes): the file is
	// hashed as it is written, so nothing reads it back, and gigabytes of
	// it in the page cache would only push out what is there (the input,
	// which the next format reads again); it also skips a copy per byte.
	// A file system that refuses direct I/O gets buffered writes.
	f, err := os.OpenFile(w.partial, os.O_RDWR|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		f, err = os.OpenFile(w.partial, os.O_RDWR, 0)
	}
	if err != nil {
		return true, err
	}
	defer f.Close()
	add, done := w.progress(filepath.Base(w.src), total)
	defer done()
	sum, _, err := writeVHDX(w.ctx, layout, f, vhdxOptions{blockSize: geo.blockSize, workers: workers, progress: add})
	if err != nil {
		if ctxErr := w.ctx.Err(); ctxErr != nil {
			return true, ctxErr
		}
		return true, fmt.Errorf("writing vhdx: %w", err)
	}
	w.sha256 = sum
	return true, f.Close()
}
