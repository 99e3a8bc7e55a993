package installmedia

// A test-only writer of small UDF images, written from ECMA-167 and the
// OSTA UDF specification, to test the reader on layouts the available
// mastering tools cannot make: UDF-only trees behind an ISO 9660 bridge
// that holds just a README (as oscdimg writes Windows media), UDF 2.50
// metadata partitions with extended file entries, allocation extent
// descriptor chains, embedded data, 16-bit names and files over 4 GiB
// (recorded sparsely). Its output is cross-checked with 7-Zip and udfinfo.

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unicode/utf16"
)

const bs = udfBlockSize

// udfNode is a file or directory to record.
type udfNode struct {
	name     string
	dir      bool
	children []*udfNode
	// File contents: data, or for sparse files size and chunks (offset
	// -> bytes), the rest reading as zeros.
	data     []byte
	size     int64
	chunks   map[int64][]byte
	embedded bool // record the data inside the file entry

	icb      uint32 // block of the (extended) file entry, in the ICB partition
	uniqueID uint64
}

func udfDir(name string, children ...*udfNode) *udfNode {
	return &udfNode{name: name, dir: true, children: children}
}

func udfFileNode(name string, data []byte) *udfNode {
	return &udfNode{name: name, data: data, size: int64(len(data))}
}

type udfBuildOptions struct {
	revision  uint16 // 0x0102 (file entries, type 1 partition) or 0x0250 (metadata partition, extended file entries)
	bridge    bool   // ISO 9660 bridge holding only README.TXT
	longADs   bool   // long allocation descriptors for file data (always with 0x0250)
	inlineADs int    // at most this many descriptors in a file entry before an allocation extent descriptor (0: no limit)
	adsPerAED int    // at most this many descriptors per allocation extent descriptor (0: as many as fit)
	maxExtent int64  // largest extent (default: the UDF maximum, 2^30 - 2048)
}

// udfBuilder lays out and writes an image.
type udfBuilder struct {
	t   testing.TB
	f   *os.File
	opt udfBuildOptions

	partStart  uint32 // first sector of the physical partition
	physNext   uint32 // next free block of the physical partition
	meta       bool   // metadata partition in use
	metaStart  uint32 // physical block of the metadata file's data
	mirrorAt   uint32 // physical block of the mirror file's data
	metaBlocks uint32
	metaNext   uint32 // next free block of the metadata partition
	nextID     uint64
	files      int
	dirs       int
}

const (
	partitionStartSector = 257
	metaPartitionBlocks  = 64
)

// buildUDF writes a UDF image of root's tree and returns its path.
func buildUDF(t testing.TB, root *udfNode, opt udfBuildOptions) string {
	t.Helper()
	if opt.revision == 0 {
		opt.revision = 0x0102
	}
	if opt.maxExtent == 0 {
		opt.maxExtent = 1<<30 - bs
	}
	path := filepath.Join(t.TempDir(), "udf.iso")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := &udfBuilder{t: t, f: f, opt: opt, partStart: partitionStartSector, nextID: 16}
	b.meta = opt.revision >= 0x0250
	if b.meta {
		// Blocks 0 and 1: metadata and mirror file entries; then the
		// metadata file's data and its mirror copy.
		b.metaBlocks = metaPartitionBlocks
		b.metaStart = 2
		b.mirrorAt = b.metaStart + b.metaBlocks
		b.physNext = b.mirrorAt + b.metaBlocks
	}
	b.build(root)
	return path
}

// icbRef is the partition reference of ICBs and directories.
func (b *udfBuilder) icbRef() uint16 {
	if b.meta {
		return 1
	}
	return 0
}

func (b *udfBuilder) writeAt(data []byte, sector int64) {
	if _, err := b.f.WriteAt(data, sector*bs); err != nil {
		b.t.Fatal(err)
	}
}

// allocMeta allocates n blocks in the partition holding ICBs.
func (b *udfBuilder) allocMeta(n uint32) uint32 {
	if !b.meta {
		return b.allocPhys(n)
	}
	blk := b.metaNext
	b.metaNext += n
	if b.metaNext > b.metaBlocks {
		b.t.Fatalf("UDF test image: metadata partition full")
	}
	return blk
}

func (b *udfBuilder) allocPhys(n uint32) uint32 {
	blk := b.physNext
	b.physNext += n
	return blk
}

// writeMeta writes data at a block of the partition holding ICBs (and the
// mirror copy).
func (b *udfBuilder) writeMeta(blk uint32, data []byte) {
	if !b.meta {
		b.writePhys(blk, data)
		return
	}
	b.writePhys(b.metaStart+blk, data)
	b.writePhys(b.mirrorAt+blk, data)
}

func (b *udfBuilder) writePhys(blk uint32, data []byte) {
	b.writeAt(data, int64(b.partStart)+int64(blk))
}

func (b *udfBuilder) descVersion() uint16 {
	if b.opt.revision >= 0x0200 {
		return 3
	}
	return 2
}

// tag fills in a descriptor tag over desc[:16] with the CRC covering
// desc[16:crcEnd].
func (b *udfBuilder) tag(desc []byte, id uint16, loc uint32, crcEnd int) []byte {
	binary.LittleEndian.PutUint16(desc[0:], id)
	binary.LittleEndian.PutUint16(desc[2:], b.descVersion())
	binary.LittleEndian.PutUint16(desc[6:], 1) // serial number
	binary.LittleEndian.PutUint16(desc[8:], crcITUT(desc[16:crcEnd]))
	binary.LittleEndian.PutUint16(desc[10:], uint16(crcEnd-16))
	binary.LittleEndian.PutUint32(desc[12:], loc)
	desc[4] = tagChecksum(desc)
	return desc
}

func timestamp(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], 1<<12) // local time, UTC offset 0
	binary.LittleEndian.PutUint16(b[2:], 2024)
	b[4], b[5], b[6], b[7], b[8] = 3, 14, 15, 9, 26
}

func regid(b []byte, flags byte, ident string, suffix ...byte) {
	b[0] = flags
	copy(b[1:24], ident)
	copy(b[24:32], suffix)
}

func (b *udfBuilder) udfSuffix() []byte {
	return []byte{byte(b.opt.revision), byte(b.opt.revision >> 8)}
}

func implID(dst []byte) { regid(dst, 0, "*winbake test") }

func charspec(b []byte) {
	b[0] = 0
	copy(b[1:], "OSTA Compressed Unicode")
}

// cs0 encodes a name as OSTA CS0: 8 bits a character when possible,
// big-endian UTF-16 otherwise.
func cs0(s string) []byte {
	for _, r := range s {
		if r > 0xFF {
			units := utf16.Encode([]rune(s))
			out := []byte{16}
			for _, u := range units {
				out = binary.BigEndian.AppendUint16(out, u)
			}
			return out
		}
	}
	out := []byte{8}
	for _, r := range s {
		out = append(out, byte(r))
	}
	return out
}

// dstring writes a fixed-length CS0 string whose last byte is its length.
func dstring(b []byte, s string) {
	c := cs0(s)
	copy(b, c)
	b[len(b)-1] = byte(len(c))
}

func longADBytes(length uint32, kind uint8, blk uint32, ref uint16) []byte {
	out := make([]byte, 16)
	binary.LittleEndian.PutUint32(out[0:], length|uint32(kind)<<30)
	binary.LittleEndian.PutUint32(out[4:], blk)
	binary.LittleEndian.PutUint16(out[8:], ref)
	return out
}

func shortADBytes(length uint32, kind uint8, blk uint32) []byte {
	out := make([]byte, 8)
	binary.LittleEndian.PutUint32(out[0:], length|uint32(kind)<<30)
	binary.LittleEndian.PutUint32(out[4:], blk)
	return out
}

func (b *udfBuilder) build(root *udfNode) {
	// File set descriptor and its terminator come first in the ICB
	// partition.
	fsdBlock := b.allocMeta(2)
	var nodes []*udfNode
	var assign func(n *udfNode)
	assign = func(n *udfNode) {
		n.icb = b.allocMeta(1)
		if n != root {
			n.uniqueID = b.nextID
			b.nextID++
		}
		nodes = append(nodes, n)
		if n.dir {
			b.dirs++
		} else {
			b.files++
		}
		for _, c := range n.children {
			assign(c)
		}
	}
	assign(root)
	var write func(n, parent *udfNode)
	write = func(n, parent *udfNode) {
		if n.dir {
			b.writeDir(n, parent)
			for _, c := range n.children {
				write(c, n)
			}
		} else {
			b.writeFile(n)
		}
	}
	write(root, root)

	// File set descriptor.
	fsd := make([]byte, bs)
	timestamp(fsd[16:])
	binary.LittleEndian.PutUint16(fsd[28:], 3)
	binary.LittleEndian.PutUint16(fsd[30:], 3)
	binary.LittleEndian.PutUint32(fsd[32:], 1)
	binary.LittleEndian.PutUint32(fsd[36:], 1)
	charspec(fsd[48:])
	dstring(fsd[112:240], "WINBAKE_UDF")
	charspec(fsd[240:])
	dstring(fsd[304:336], "WINBAKE_UDF")
	copy(fsd[400:], longADBytes(bs, 0, root.icb, b.icbRef()))
	regid(fsd[416:], 0, "*OSTA UDF Compliant", append(b.udfSuffix(), 3)...)
	b.writeMeta(fsdBlock, b.tag(fsd, tagFileSet, fsdBlock, 512))
	td := make([]byte, bs)
	b.writeMeta(fsdBlock+1, b.tag(td, tagTerminating, fsdBlock+1, 512))

	if b.meta {
		// Metadata file and mirror: extended file entries in the physical
		// partition whose short allocation descriptors cover the data.
		for i, at := range []uint32{b.metaStart, b.mirrorAt} {
			ads := shortADBytes(b.metaBlocks*bs, 0, at)
			ft := byte(fileTypeMetadata + i)
			b.writePhys(uint32(i), b.fileEntry(uint32(i), ft, int64(b.metaBlocks)*bs, 0, ads, 0, uint64(b.metaBlocks)))
		}
	}
	b.writeVolume()
}

// writeDir records a directory: its file identifier descriptors and file
// entry.
func (b *udfBuilder) writeDir(n, parent *udfNode) {
	type fidSpec struct {
		chars byte
		name  []byte
		icb   uint32
		uid   uint64
	}
	specs := []fidSpec{{chars: fidParent | fidDirectory, icb: parent.icb, uid: parent.uniqueID}}
	for _, c := range n.children {
		s := fidSpec{name: cs0(c.name), icb: c.icb, uid: c.uniqueID}
		if c.dir {
			s.chars = fidDirectory
		}
		specs = append(specs, s)
	}
	size := 0
	for _, s := range specs {
		size += (38 + len(s.name) + 3) &^ 3
	}
	blocks := uint32((size + bs - 1) / bs)
	start := b.allocMeta(blocks)
	data := make([]byte, int(blocks)*bs)
	off := 0
	for _, s := range specs {
		l := (38 + len(s.name) + 3) &^ 3
		fid := data[off : off+l]
		binary.LittleEndian.PutUint16(fid[16:], 1)
		fid[18] = s.chars
		fid[19] = byte(len(s.name))
		copy(fid[20:], longADBytes(bs, 0, s.icb, b.icbRef()))
		binary.LittleEndian.PutUint32(fid[20+12:], uint32(s.uid)) // UDF unique ID in the long_ad implementation use
		copy(fid[38:], s.name)
		b.tag(fid, tagFileIdentifier, start+uint32(off/bs), l) // the CRC covers the padding
		off += l
	}
	for i := uint32(0); i < blocks; i++ {
		b.writeMeta(start+i, data[i*bs:(i+1)*bs])
	}
	ads := shortADBytes(uint32(size), 0, start)
	b.writeMeta(n.icb, b.fileEntry(n.icb, fileTypeDirectory, int64(size), 0, ads, n.uniqueID, uint64(blocks)))
}

// writeFile records a file's data and file entry.
func (b *udfBuilder) writeFile(n *udfNode) {
	if n.data != nil {
		n.size = int64(len(n.data))
	}
	if n.embedded {
		b.writeMeta(n.icb, b.fileEntry(n.icb, fileTypeRegular, n.size, 3, n.data, n.uniqueID, 0))
		return
	}
	blocks := uint32((n.size + bs - 1) / bs)
	start := b.allocPhys(blocks)
	if n.data != nil {
		b.writePhys(start, n.data)
	}
	for off, chunk := range n.chunks {
		b.writeAt(chunk, int64(b.partStart)+int64(start)+off/bs) // chunk offsets are block-aligned
	}
	long := b.opt.longADs || b.meta
	var ads [][]byte
	for off := int64(0); off < n.size || off == 0; off += b.opt.maxExtent {
		l := min(b.opt.maxExtent, n.size-off)
		blk := start + uint32(off/bs)
		if long {
			ads = append(ads, longADBytes(uint32(l), 0, blk, 0))
		} else {
			ads = append(ads, shortADBytes(uint32(l), 0, blk))
		}
		if n.size == 0 {
			ads = nil
			break
		}
	}
	allocType := uint16(0)
	if long {
		allocType = 1
	}
	inline := ads
	if b.opt.inlineADs > 0 && len(ads) > b.opt.inlineADs {
		inline = ads[:b.opt.inlineADs]
		rest := ads[b.opt.inlineADs:]
		// Chain allocation extent descriptors holding the rest; each
		// is pointed to by an "extent of allocation descriptors"
		// descriptor at the end of the previous list.
		per := b.opt.adsPerAED
		if per <= 0 {
			per = len(rest)
		}
		var chunks [][][]byte
		for len(rest) > 0 {
			k := min(per, len(rest))
			chunks = append(chunks, rest[:k])
			rest = rest[k:]
		}
		blocksAED := make([]uint32, len(chunks))
		for i := range chunks {
			blocksAED[i] = b.allocMeta(1)
		}
		pointer := func(blk uint32) []byte {
			if long {
				return longADBytes(bs, extentNextADsExtent, blk, b.icbRef())
			}
			return shortADBytes(bs, extentNextADsExtent, blk)
		}
		for i, c := range chunks {
			aed := make([]byte, bs)
			list := concat(c)
			if i+1 < len(chunks) {
				list = append(list, pointer(blocksAED[i+1])...)
			}
			binary.LittleEndian.PutUint32(aed[20:], uint32(len(list)))
			copy(aed[24:], list)
			b.writeMeta(blocksAED[i], b.tag(aed, tagAllocationExtent, blocksAED[i], 24+len(list)))
		}
		inline = append(inline[:len(inline):len(inline)], pointer(blocksAED[0]))
	}
	b.writeMeta(n.icb, b.fileEntry(n.icb, fileTypeRegular, n.size, allocType, concat(inline), n.uniqueID, uint64(blocks)))
}

func concat(parts [][]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// fileEntry builds a file entry (UDF < 2.00) or extended file entry.
func (b *udfBuilder) fileEntry(loc uint32, fileType byte, size int64, allocType uint16, ads []byte, uniqueID, blocks uint64) []byte {
	e := make([]byte, bs)
	// ICB tag: strategy 4, one entry.
	binary.LittleEndian.PutUint16(e[20:], 4)
	binary.LittleEndian.PutUint16(e[24:], 1)
	e[27] = fileType
	binary.LittleEndian.PutUint16(e[34:], allocType)
	binary.LittleEndian.PutUint32(e[36:], 0xFFFFFFFF)
	binary.LittleEndian.PutUint32(e[40:], 0xFFFFFFFF)
	binary.LittleEndian.PutUint32(e[44:], 0x14A5) // read (and execute) for everyone
	binary.LittleEndian.PutUint16(e[48:], 1)
	binary.LittleEndian.PutUint64(e[56:], uint64(size))
	var adStart int
	if b.meta {
		binary.LittleEndian.PutUint64(e[64:], uint64(size))
		binary.LittleEndian.PutUint64(e[72:], blocks)
		for _, at := range []int{80, 92, 104, 116} {
			timestamp(e[at:])
		}
		binary.LittleEndian.PutUint32(e[128:], 1)
		implID(e[168:])
		binary.LittleEndian.PutUint64(e[200:], uniqueID)
		binary.LittleEndian.PutUint32(e[212:], uint32(len(ads)))
		adStart = 216
	} else {
		binary.LittleEndian.PutUint64(e[64:], blocks)
		for _, at := range []int{72, 84, 96} {
			timestamp(e[at:])
		}
		binary.LittleEndian.PutUint32(e[108:], 1)
		implID(e[128:])
		binary.LittleEndian.PutUint64(e[160:], uniqueID)
		binary.LittleEndian.PutUint32(e[172:], uint32(len(ads)))
		adStart = 176
	}
	if adStart+len(ads) > bs {
		b.t.Fatalf("UDF test image: %d bytes of allocation descriptors do not fit a file entry", len(ads))
	}
	copy(e[adStart:], ads)
	id := uint16(tagFileEntry)
	if b.meta {
		id = tagExtendedFileEntry
	}
	return b.tag(e, id, loc, adStart+len(ads))
}

// writeVolume writes the volume recognition sequence, the ISO 9660 bridge,
// the volume descriptor sequences, the integrity descriptor and the
// anchors.
func (b *udfBuilder) writeVolume() {
	partLen := b.physNext
	total := int64(b.partStart) + int64(partLen) + 1 // + closing anchor

	vrs := 16
	if b.opt.bridge {
		b.writeISOBridge(total)
		vrs = 18
	}
	nsr := "NSR02"
	if b.opt.revision >= 0x0200 {
		nsr = "NSR03"
	}
	for i, id := range []string{"BEA01", nsr, "TEA01"} {
		d := make([]byte, bs)
		copy(d[1:], id)
		d[6] = 1
		b.writeAt(d, int64(vrs+i))
	}

	for _, seqStart := range []uint32{32, 48} {
		loc := seqStart
		next := func() uint32 { l := loc; loc++; return l }

		pvd := make([]byte, bs)
		dstring(pvd[24:56], "WINBAKE_UDF")
		binary.LittleEndian.PutUint16(pvd[56:], 1)
		binary.LittleEndian.PutUint16(pvd[58:], 1)
		binary.LittleEndian.PutUint16(pvd[60:], 2)
		binary.LittleEndian.PutUint16(pvd[62:], 2)
		binary.LittleEndian.PutUint32(pvd[64:], 1)
		binary.LittleEndian.PutUint32(pvd[68:], 1)
		dstring(pvd[72:200], "0123456789ABCDEFwinbake")
		charspec(pvd[200:])
		charspec(pvd[264:])
		implID(pvd[344:])
		timestamp(pvd[376:])
		implID(pvd[388:])
		l := next()
		b.writeAt(b.tag(pvd, tagPrimaryVolume, l, 512), int64(l))

		iuvd := make([]byte, bs)
		binary.LittleEndian.PutUint32(iuvd[16:], 1)
		regid(iuvd[20:], 0, "*UDF LV Info", b.udfSuffix()...)
		charspec(iuvd[52:])
		dstring(iuvd[116:244], "WINBAKE_UDF")
		implID(iuvd[352:])
		l = next()
		b.writeAt(b.tag(iuvd, tagImplementationUse, l, 512), int64(l))

		pd := make([]byte, bs)
		binary.LittleEndian.PutUint32(pd[16:], 2)
		binary.LittleEndian.PutUint16(pd[20:], 1) // allocated
		binary.LittleEndian.PutUint16(pd[22:], 0) // partition number
		regid(pd[24:], 0, "+"+nsr)
		binary.LittleEndian.PutUint32(pd[184:], 1) // read-only
		binary.LittleEndian.PutUint32(pd[188:], b.partStart)
		binary.LittleEndian.PutUint32(pd[192:], partLen)
		implID(pd[196:])
		l = next()
		b.writeAt(b.tag(pd, tagPartition, l, 512), int64(l))

		lvd := make([]byte, bs)
		binary.LittleEndian.PutUint32(lvd[16:], 3)
		charspec(lvd[20:])
		dstring(lvd[84:212], "WINBAKE_UDF")
		binary.LittleEndian.PutUint32(lvd[212:], bs)
		regid(lvd[216:], 0, "*OSTA UDF Compliant", append(b.udfSuffix(), 3)...)
		copy(lvd[248:], longADBytes(2*bs, 0, 0, b.icbRef()))
		maps := []byte{1, 6, 1, 0, 0, 0} // type 1: volume 1, partition 0
		if b.meta {
			m := make([]byte, 64)
			m[0], m[1] = 2, 64
			regid(m[4:], 0, "*UDF Metadata Partition", b.udfSuffix()...)
			binary.LittleEndian.PutUint16(m[36:], 1)
			binary.LittleEndian.PutUint16(m[38:], 0)
			binary.LittleEndian.PutUint32(m[40:], 0)          // metadata file
			binary.LittleEndian.PutUint32(m[44:], 1)          // mirror
			binary.LittleEndian.PutUint32(m[48:], 0xFFFFFFFF) // no bitmap
			binary.LittleEndian.PutUint32(m[52:], 32)
			binary.LittleEndian.PutUint16(m[56:], 1)
			maps = append(maps, m...)
		}
		binary.LittleEndian.PutUint32(lvd[264:], uint32(len(maps)))
		binary.LittleEndian.PutUint32(lvd[268:], uint32(1+boolInt(b.meta)))
		implID(lvd[272:])
		binary.LittleEndian.PutUint32(lvd[432:], 2*bs) // integrity sequence
		binary.LittleEndian.PutUint32(lvd[436:], 64)
		copy(lvd[440:], maps)
		l = next()
		b.writeAt(b.tag(lvd, tagLogicalVolume, l, 440+len(maps)), int64(l))

		usd := make([]byte, bs)
		binary.LittleEndian.PutUint32(usd[16:], 4)
		l = next()
		b.writeAt(b.tag(usd, tagUnallocatedSpace, l, 24), int64(l))

		td := make([]byte, bs)
		l = next()
		b.writeAt(b.tag(td, tagTerminating, l, 512), int64(l))
	}

	// Logical volume integrity descriptor, closed, and a terminator.
	nParts := 1 + boolInt(b.meta)
	lvid := make([]byte, bs)
	timestamp(lvid[16:])
	binary.LittleEndian.PutUint32(lvid[28:], 1) // close
	binary.LittleEndian.PutUint64(lvid[40:], b.nextID)
	binary.LittleEndian.PutUint32(lvid[72:], uint32(nParts))
	binary.LittleEndian.PutUint32(lvid[76:], 46)
	sizes := []uint32{partLen, b.metaBlocks}
	for i := 0; i < nParts; i++ {
		binary.LittleEndian.PutUint32(lvid[80+4*i:], 0) // free
		binary.LittleEndian.PutUint32(lvid[80+4*nParts+4*i:], sizes[i])
	}
	iu := lvid[80+8*nParts:]
	implID(iu)
	binary.LittleEndian.PutUint32(iu[32:], uint32(b.files))
	binary.LittleEndian.PutUint32(iu[36:], uint32(b.dirs))
	binary.LittleEndian.PutUint16(iu[40:], b.opt.revision)
	binary.LittleEndian.PutUint16(iu[42:], b.opt.revision)
	binary.LittleEndian.PutUint16(iu[44:], b.opt.revision)
	b.writeAt(b.tag(lvid, 9, 64, 80+8*nParts+46), 64)
	td := make([]byte, bs)
	b.writeAt(b.tag(td, tagTerminating, 65, 512), 65)

	for _, at := range []int64{256, total - 1} {
		avdp := make([]byte, bs)
		binary.LittleEndian.PutUint32(avdp[16:], 16*bs)
		binary.LittleEndian.PutUint32(avdp[20:], 32)
		binary.LittleEndian.PutUint32(avdp[24:], 16*bs)
		binary.LittleEndian.PutUint32(avdp[28:], 48)
		b.writeAt(b.tag(avdp, tagAnchor, uint32(at), 512), at)
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// writeISOBridge writes an ISO 9660 volume (sectors 16, 17 and 21 to 24)
// whose only file is README.TXT, as oscdimg does for UDF-only media.
func (b *udfBuilder) writeISOBridge(totalSectors int64) {
	const rootSector, lPathSector, mPathSector, readmeSector = 21, 22, 23, 24
	both32 := func(dst []byte, v uint32) {
		binary.LittleEndian.PutUint32(dst, v)
		binary.BigEndian.PutUint32(dst[4:], v)
	}
	both16 := func(dst []byte, v uint16) {
		binary.LittleEndian.PutUint16(dst, v)
		binary.BigEndian.PutUint16(dst[2:], v)
	}
	record := func(id []byte, sector, size uint32, flags byte) []byte {
		l := 33 + len(id)
		if l%2 != 0 {
			l++
		}
		r := make([]byte, l)
		r[0] = byte(l)
		both32(r[2:], sector)
		both32(r[10:], size)
		copy(r[18:], []byte{124, 3, 14, 15, 9, 26, 0})
		r[25] = flags
		both16(r[28:], 1)
		r[32] = byte(len(id))
		copy(r[33:], id)
		return r
	}
	space := func(n int) []byte {
		s := make([]byte, n)
		for i := range s {
			s[i] = ' '
		}
		return s
	}
	date := []byte("2024031415092600\x00")

	pvd := make([]byte, bs)
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	copy(pvd[8:], space(32))
	copy(pvd[40:], append([]byte("WINBAKE_UDF"), space(21)...))
	both32(pvd[80:], uint32(totalSectors))
	both16(pvd[120:], 1)
	both16(pvd[124:], 1)
	both16(pvd[128:], bs)
	both32(pvd[132:], 10)
	binary.LittleEndian.PutUint32(pvd[140:], lPathSector)
	binary.BigEndian.PutUint32(pvd[148:], mPathSector)
	copy(pvd[156:], record([]byte{0}, rootSector, bs, 2))
	for _, at := range []int{190, 318, 446, 574} {
		copy(pvd[at:], space(128))
	}
	copy(pvd[702:], space(37*3))
	for _, at := range []int{813, 830, 847, 864} {
		copy(pvd[at:], date)
	}
	pvd[881] = 1
	b.writeAt(pvd, 16)

	term := make([]byte, bs)
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	b.writeAt(term, 17)

	dir := make([]byte, 0, bs)
	dir = append(dir, record([]byte{0}, rootSector, bs, 2)...)
	dir = append(dir, record([]byte{1}, rootSector, bs, 2)...)
	dir = append(dir, record([]byte("README.TXT;1"), readmeSector, uint32(len(readmeText)), 0)...)
	b.writeAt(append(dir, make([]byte, bs-len(dir))...), rootSector)

	pt := func(order binary.ByteOrder) []byte {
		e := make([]byte, bs)
		e[0] = 1
		order.PutUint32(e[2:], rootSector)
		order.PutUint16(e[6:], 1)
		return e
	}
	b.writeAt(pt(binary.LittleEndian), lPathSector)
	b.writeAt(pt(binary.BigEndian), mPathSector)
	b.writeAt([]byte(readmeText), readmeSector)
}

// sparseWIM returns chunks of a WIM of the given size whose header comes
// from real and whose XML data resource is moved to the end, as in an
// install.wim of several GiB. Offsets are multiples of the block size.
func sparseWIM(t testing.TB, real []byte, size int64) map[int64][]byte {
	t.Helper()
	res := parseResourceHeader(real[wimOffXMLResHdr:])
	xmlData := real[res.offset : res.offset+res.originalSize]
	xmlAt := (size - int64(len(xmlData))) &^ (bs - 1)
	if xmlAt+int64(len(xmlData)) > size {
		t.Fatalf("size %d too small", size)
	}
	hdr := append([]byte(nil), real[:wimHeaderSize]...)
	putResHdr(hdr[wimOffXMLResHdr:], res.sizeInWIM, res.flags, uint64(xmlAt), res.originalSize)
	return map[int64][]byte{0: hdr, xmlAt: xmlData}
}

// sortedNames lists a volume directory, sorted.
func sortedNames(t testing.TB, v volume, path string) []string {
	t.Helper()
	names, err := v.list(path)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}
