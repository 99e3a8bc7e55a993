package compress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The parser below reads what the tests check of a VHDX file straight from
// the [MS-VHDX] layout, independently of vhdxwriter.go: offsets and field
// positions are the spec's, and the CRC-32C is the standard library's.

type parsedVHDXHeader struct {
	seq                     uint64
	fileWrite, dataWrite    [16]byte
	logGUID                 [16]byte
	logVersion, version     uint16
	logLength               uint32
	logOffset               uint64
	body                    []byte // the 4 KiB without signature, checksum and sequence number
	checksumOK, signatureOK bool
}

type parsedVHDXRegion struct {
	guid     [16]byte
	offset   uint64
	length   uint32
	required uint32
}

type parsedVHDXItem struct {
	guid                 [16]byte
	offset, length, bits uint32
	data                 []byte
}

type parsedVHDX struct {
	size         int64 // file size
	creator      string
	headers      [2]parsedVHDXHeader
	regionTables [2][]byte // 64 KiB each
	regionsOK    [2]bool
	regions      []parsedVHDXRegion
	items        []parsedVHDXItem
	blockSize    int64
	virtualSize  int64
	logicalSect  uint32
	physSect     uint32
	diskID       [16]byte
	bat          []uint64
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// checksumOK recomputes the CRC-32C of b with its checksum field (bytes
// 4-7) taken as zero.
func checksumOK(b []byte) bool {
	c := bytes.Clone(b)
	want := binary.LittleEndian.Uint32(c[4:])
	clear(c[4:8])
	return crc32.Checksum(c, crc32c) == want
}

func guidOf(s string) [16]byte {
	// [MS-DTYP] 2.3.4.2: Data1-Data3 little-endian, Data4 as written.
	h, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(h) != 16 {
		panic(s)
	}
	return [16]byte{h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]}
}

var (
	specRegionBAT       = guidOf("2DC27766-F623-4200-9D64-115E9BFD4A08")
	specRegionMetadata  = guidOf("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	specFileParameters  = guidOf("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	specVirtualDiskSize = guidOf("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	specVirtualDiskID   = guidOf("BECA12AB-B2E6-4523-93EF-C309E000C746")
	specLogicalSector   = guidOf("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	specPhysicalSector  = guidOf("CDA348C7-445D-4471-9CC9-E9885251C556")
)

func parseVHDX(t *testing.T, path string) *parsedVHDX {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	read := func(off int64, n int) []byte {
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatalf("%s: reading %d bytes at %d: %v", path, n, off, err)
		}
		return b
	}
	le := binary.LittleEndian
	v := &parsedVHDX{size: fi.Size()}
	// §2.2.1 File Type Identifier.
	id := read(0, 8+512)
	if string(id[:8]) != "vhdxfile" {
		t.Fatalf("%s: file type identifier %q", path, id[:8])
	}
	var creator []rune
	for i := 8; i < len(id); i += 2 {
		c := le.Uint16(id[i:])
		if c == 0 {
			break
		}
		creator = append(creator, rune(c))
	}
	v.creator = string(creator)
	// §2.2.2 Headers at 64 KiB and 128 KiB.
	for i, off := range []int64{64 << 10, 128 << 10} {
		b := read(off, 4096)
		h := &v.headers[i]
		h.signatureOK = string(b[:4]) == "head"
		h.checksumOK = checksumOK(b)
		h.seq = le.Uint64(b[8:])
		copy(h.fileWrite[:], b[16:])
		copy(h.dataWrite[:], b[32:])
		copy(h.logGUID[:], b[48:])
		h.logVersion = le.Uint16(b[64:])
		h.version = le.Uint16(b[66:])
		h.logLength = le.Uint32(b[68:])
		h.logOffset = le.Uint64(b[72:])
		h.body = b[16:]
	}
	// §2.2.3 Region tables at 192 KiB and 256 KiB.
	for i, off := range []int64{192 << 10, 256 << 10} {
		b := read(off, 64<<10)
		v.regionTables[i] = b
		v.regionsOK[i] = string(b[:4]) == "regi" && checksumOK(b)
	}
	rt := v.regionTables[0]
	n := le.Uint32(rt[8:])
	if n > 2047 {
		t.Fatalf("%s: %d region table entries", path, n)
	}
	var meta parsedVHDXRegion
	var bat parsedVHDXRegion
	for k := range int(n) {
		e := rt[16+32*k:]
		var r parsedVHDXRegion
		copy(r.guid[:], e)
		r.offset = le.Uint64(e[16:])
		r.length = le.Uint32(e[24:])
		r.required = le.Uint32(e[28:])
		v.regions = append(v.regions, r)
		switch r.guid {
		case specRegionBAT:
			bat = r
		case specRegionMetadata:
			meta = r
		}
	}
	if bat.length == 0 || meta.length == 0 {
		t.Fatalf("%s: regions %+v lack the BAT or the metadata region", path, v.regions)
	}
	// §2.6.1 Metadata table and §2.6.2 items.
	m := read(int64(meta.offset), int(meta.length))
	if string(m[:8]) != "metadata" {
		t.Fatalf("%s: metadata table signature %q", path, m[:8])
	}
	for k := range int(le.Uint16(m[10:])) {
		e := m[32+32*k:]
		var it parsedVHDXItem
		copy(it.guid[:], e)
		it.offset, it.length, it.bits = le.Uint32(e[16:]), le.Uint32(e[20:]), le.Uint32(e[24:])
		if int64(it.offset)+int64(it.length) > int64(len(m)) {
			t.Fatalf("%s: metadata item %x at %d+%d is outside the region", path, it.guid, it.offset, it.length)
		}
		it.data = m[it.offset : it.offset+it.length]
		v.items = append(v.items, it)
		switch it.guid {
		case specFileParameters:
			v.blockSize = int64(le.Uint32(it.data))
		case specVirtualDiskSize:
			v.virtualSize = int64(le.Uint64(it.data))
		case specVirtualDiskID:
			copy(v.diskID[:], it.data)
		case specLogicalSector:
			v.logicalSect = le.Uint32(it.data)
		case specPhysicalSector:
			v.physSect = le.Uint32(it.data)
		}
	}
	if v.blockSize == 0 || v.virtualSize == 0 || v.logicalSect == 0 {
		t.Fatalf("%s: metadata lacks block size, virtual size or sector size: %+v", path, v)
	}
	// §2.5 BAT.
	b := read(int64(bat.offset), int(bat.length))
	for i := 0; i < len(b); i += 8 {
		v.bat = append(v.bat, le.Uint64(b[i:]))
	}
	return v
}

// checkVHDXStructure checks what [MS-VHDX] requires of a dynamic VHDX
// holding the guest bytes of the raw image src, and returns which payload
// blocks are stored.
func checkVHDXStructure(t *testing.T, v *parsedVHDX, src string) {
	t.Helper()
	for i, h := range v.headers {
		if !h.signatureOK || !h.checksumOK {
			t.Errorf("header %d: signature ok %v, checksum ok %v", i+1, h.signatureOK, h.checksumOK)
		}
		if h.version != 1 || h.logVersion != 0 || h.logGUID != [16]byte{} {
			t.Errorf("header %d: version %d, log version %d, log GUID %x; want 1, 0 and zero (empty log)", i+1, h.version, h.logVersion, h.logGUID)
		}
		if h.logOffset < 1<<20 || h.logOffset%(1<<20) != 0 || h.logLength == 0 || h.logLength%(1<<20) != 0 {
			t.Errorf("header %d: log at %d+%d, want 1 MiB aligned past the header section", i+1, h.logOffset, h.logLength)
		}
		if h.fileWrite == [16]byte{} || h.dataWrite == [16]byte{} {
			t.Errorf("header %d: zero FileWriteGuid or DataWriteGuid", i+1)
		}
	}
	// One current header (§2.2.2), both with the same content.
	h1, h2 := v.headers[0], v.headers[1]
	if h1.seq == h2.seq || max(h1.seq, h2.seq)-min(h1.seq, h2.seq) != 1 {
		t.Errorf("header sequence numbers %d and %d: want consecutive, so one is current", h1.seq, h2.seq)
	}
	if !bytes.Equal(h1.body, h2.body) {
		t.Error("the two headers differ in more than their sequence number")
	}
	if !v.regionsOK[0] || !v.regionsOK[1] {
		t.Errorf("region tables valid: %v", v.regionsOK)
	}
	if !bytes.Equal(v.regionTables[0], v.regionTables[1]) {
		t.Error("the two region tables differ")
	}
	// §2.2.3.2: the two known regions, required, 1 MiB aligned, apart from
	// each other, the header section and the log.
	spans := [][2]uint64{{0, 1 << 20}, {h1.logOffset, h1.logOffset + uint64(h1.logLength)}}
	var guids [][16]byte
	for _, r := range v.regions {
		guids = append(guids, r.guid)
		if r.required != 1 || r.offset%(1<<20) != 0 || r.length == 0 || r.length%(1<<20) != 0 {
			t.Errorf("region %x: offset %d length %d required %d", r.guid, r.offset, r.length, r.required)
		}
		spans = append(spans, [2]uint64{r.offset, r.offset + uint64(r.length)})
	}
	if len(guids) != 2 || !slices.Contains(guids, specRegionBAT) || !slices.Contains(guids, specRegionMetadata) {
		t.Errorf("regions %x, want the BAT and the metadata region", guids)
	}
	// §2.6.2: the five items, their flags and values.
	wantFlags := map[[16]byte]uint32{specFileParameters: 4, specVirtualDiskSize: 6, specVirtualDiskID: 6, specLogicalSector: 6, specPhysicalSector: 6}
	if len(v.items) != len(wantFlags) {
		t.Errorf("%d metadata items, want %d", len(v.items), len(wantFlags))
	}
	for _, it := range v.items {
		if want, ok := wantFlags[it.guid]; !ok || it.bits != want || it.offset < 64<<10 {
			t.Errorf("metadata item %x: flags %#x at %d, want flags %#x at 64 KiB or later", it.guid, it.bits, it.offset, want)
		}
	}
	if fp := v.items[0]; fp.guid == specFileParameters && binary.LittleEndian.Uint32(fp.data[4:]) != 0 {
		t.Errorf("file parameters flags %#x: want 0 (dynamic, no parent)", binary.LittleEndian.Uint32(fp.data[4:]))
	}
	if v.logicalSect != 512 || v.physSect != 512 || v.diskID == [16]byte{} {
		t.Errorf("logical sector %d, physical sector %d, disk ID %x", v.logicalSect, v.physSect, v.diskID)
	}
	if v.blockSize < 1<<20 || v.blockSize > 256<<20 || v.blockSize&(v.blockSize-1) != 0 {
		t.Errorf("block size %d", v.blockSize)
	}

	// §2.5: payload entries, with a sector bitmap entry after every chunk
	// ratio of them; a block is stored exactly when src has a non-zero
	// byte in it; stored blocks 1 MiB aligned, apart from everything else
	// and inside the file.
	raw, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fi, _ := raw.Stat()
	if v.virtualSize != fi.Size() {
		t.Errorf("virtual size %d, the source has %d bytes", v.virtualSize, fi.Size())
	}
	chunkRatio := int64(1<<23) * int64(v.logicalSect) / v.blockSize
	blocks := (v.virtualSize + v.blockSize - 1) / v.blockSize
	entries := blocks + (blocks-1)/chunkRatio
	if int64(len(v.bat)) < entries {
		t.Fatalf("BAT holds %d entries, the disk needs %d", len(v.bat), entries)
	}
	buf := make([]byte, v.blockSize)
	var stored [][2]uint64
	for i := range entries {
		e := v.bat[i]
		if (i+1)%(chunkRatio+1) == 0 {
			if e != 0 {
				t.Errorf("sector bitmap entry %d is %#x, want SB_BLOCK_NOT_PRESENT", i, e)
			}
			continue
		}
		block := i - i/(chunkRatio+1)
		hasData := false
		// Holes of the sparse source are zeros, without reading them.
		if next, err := unix.Seek(int(raw.Fd()), block*v.blockSize, unix.SEEK_DATA); err == nil && next < (block+1)*v.blockSize {
			n, err := raw.ReadAt(buf, block*v.blockSize)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			hasData = !isZero(buf[:n])
		} else if err != nil && !errors.Is(err, unix.ENXIO) {
			t.Fatal(err)
		}
		state, off := e&7, e&^(1<<20-1)
		switch {
		case hasData && state == 6 && e&(1<<20-8) == 0:
			stored = append(stored, [2]uint64{off, off + uint64(v.blockSize)})
		case !hasData && e == 2:
		default:
			t.Errorf("BAT entry %d (block %d, data %v) is %#x", i, block, hasData, e)
		}
	}
	for i, s := range stored {
		if i > 0 && s[0] < stored[i-1][1] {
			t.Errorf("payload blocks at %d and %d overlap or are out of guest order", stored[i-1][0], s[0])
		}
		for _, sp := range spans {
			if s[0] < sp[1] && sp[0] < s[1] {
				t.Errorf("payload block at %d overlaps %v", s[0], sp)
			}
		}
		if s[1] > uint64(v.size) {
			t.Errorf("payload block at %d ends past the end of the %d-byte file", s[0], v.size)
		}
	}
}

// checkVHDX runs `qemu-img check`, `qemu-img info` and `qemu-img compare`
// against the raw source on a VHDX file. compare reads every block of a
// vhdx (QEMU's driver reports no allocation), so disks over 1 GiB are
// compared range by range instead.
func checkVHDX(t *testing.T, src, out string, blockSize int64, ranges [][2]int64) {
	t.Helper()
	check := qemuImg(t, "check", "-f", "vhdx", out)
	if !strings.Contains(check, "No errors were found on the image.") {
		t.Errorf("qemu-img check %s:\n%s", out, check)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		ClusterSize int64  `json:"cluster-size"`
	}
	if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", "-f", "vhdx", out)), &info); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "vhdx" || info.VirtualSize != fi.Size() || info.ClusterSize != blockSize {
		t.Errorf("qemu-img info: format %s, virtual size %d, block size %d; want vhdx, %d, %d",
			info.Format, info.VirtualSize, info.ClusterSize, fi.Size(), blockSize)
	}
	if ranges == nil {
		qemuImg(t, "compare", "-f", "raw", "-F", "vhdx", src, out)
		return
	}
	for _, r := range ranges {
		part := out + ".part"
		// count counts from the start of the disk, skipped blocks included.
		qemuImg(t, "dd", "-f", "vhdx", "-O", "raw", "bs=65536",
			"skip="+strconv.FormatInt(r[0]/65536, 10), "count="+strconv.FormatInt((r[0]+r[1])/65536, 10), "if="+out, "of="+part)
		if got, want := fileSHA256(t, part), rawRangeSHA256(t, src, r); got != want {
			t.Errorf("qemu-img dd of %s at %d+%d: sha256 %s, the source has %s", out, r[0], r[1], got, want)
		}
		_ = os.Remove(part)
	}
}

func rawRangeSHA256(t *testing.T, path string, r [2]int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, r[0], r[1])); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkRanges returns nil (compare the whole disk) for disks up to 1 GiB,
// else the 64 KiB-aligned 1 MiB windows around every write, the first and
// last MiB, and a MiB of zeros in the middle.
func checkRanges(d qcow2Disk) [][2]int64 {
	if d.size <= 1<<30 {
		return nil
	}
	ranges := [][2]int64{{0, 1 << 20}, {d.size - 1<<20, 1 << 20}, {d.size / 2 / 65536 * 65536, 1 << 20}}
	d.writes(func(off int64, b []byte) {
		start := off / 65536 * 65536
		end := min(d.size, alignUp(off+int64(len(b)), 65536)+65536)
		ranges = append(ranges, [2]int64{start, end - start})
	})
	return ranges
}

// independentRead reads the vhdx with libvhdi (testdata/vhdx_read.py) and
// compares its media size and the given ranges (all of it when nil) with
// the raw source.
func independentRead(t *testing.T, src, out string, ranges [][2]int64) {
	t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if ranges == nil {
		ranges = [][2]int64{{0, fi.Size()}}
	}
	args := []string{filepath.Join("testdata", "vhdx_read.py"), out}
	for _, r := range ranges {
		args = append(args, fmt.Sprintf("%d:%d", r[0], r[1]))
	}
	// Debian's python3, which python3-libvhdi installs pyvhdi for.
	cmd := exec.Command("/usr/bin/python3", args...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("libvhdi could not read %s (needs Debian package python3-libvhdi, scripts/deps.sh): %v\n%s", out, err, got)
	}
	lines := strings.Fields(string(got))
	if len(lines) != len(ranges)+1 || lines[0] != strconv.FormatInt(fi.Size(), 10) {
		t.Fatalf("libvhdi read of %s: %q; want the media size %d and %d hashes", out, lines, fi.Size(), len(ranges))
	}
	for i, r := range ranges {
		if want := rawRangeSHA256(t, src, r); lines[i+1] != want {
			t.Errorf("libvhdi read of %s at %d+%d: sha256 %s, the source has %s", out, r[0], r[1], lines[i+1], want)
		}
	}
}

func writeVHDXFile(t *testing.T, layout *diskLayout, out string, opts vhdxOptions) (string, int64) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, size, err := writeVHDX(context.Background(), layout, f, opts)
	if err != nil {
		t.Fatalf("writeVHDX(block size %d): %v", opts.blockSize, err)
	}
	return sum, size
}

// TestVHDXWriterRoundTrip writes each test disk at qemu-img's default block
// size and at 1 MiB (where the "large" disk's BAT interleaves sector bitmap
// entries among stored blocks), and checks that qemu-img finds no error,
// reads back the source's bytes and sees the block size; that libvhdi, a
// reader independent of QEMU, reads the same bytes, and Glance's format
// inspector (what Glance, Nova and Cinder check on upload) accepts it; that the reported
// SHA-256 and size are the file's; that the file is no larger than
// qemu-img's own conversion; and the structure (checkVHDXStructure).
func TestVHDXWriterRoundTrip(t *testing.T) {
	requireTools(t, "qemu-img")
	for name, d := range qcow2Disks {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src.raw")
			writeQcow2Disk(t, src, d)
			layout := rawLayout(t, src)
			ranges := checkRanges(d)
			for _, blockSize := range []int64{vhdxDefaultBlockSize(d.size), 1 << 20} {
				out := filepath.Join(dir, fmt.Sprintf("out-%d.vhdx", blockSize))
				sum, size := writeVHDXFile(t, layout, out, vhdxOptions{blockSize: blockSize, workers: 3})
				checkVHDX(t, src, out, blockSize, ranges)
				independentRead(t, src, out, ranges)
				requireGlanceAccepts(t, out, "vhdx", d.size)
				checkVHDXStructure(t, parseVHDX(t, out), src)
				if got := fileSHA256(t, out); got != sum {
					t.Errorf("block size %d: reported sha256 %s, file hashes to %s", blockSize, sum, got)
				}
				fi, _ := os.Stat(out)
				if fi.Size() != size {
					t.Errorf("block size %d: reported size %d, file has %d bytes", blockSize, size, fi.Size())
				}
				qemu := filepath.Join(dir, "qemu.vhdx")
				qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", fmt.Sprintf("subformat=dynamic,block_size=%d", blockSize), src, qemu)
				qfi, _ := os.Stat(qemu)
				if fi.Size() > qfi.Size() {
					t.Errorf("block size %d: %d bytes, qemu-img's vhdx has %d", blockSize, fi.Size(), qfi.Size())
				}
				for _, f := range []string{out, qemu} {
					if err := os.Remove(f); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestVHDXParserReadsQemuImg checks the test's parser and structure checks
// on a vhdx qemu-img wrote, and that the GUIDs, regions and metadata items
// of winbake's vhdx are the ones qemu-img writes, byte for byte.
func TestVHDXParserReadsQemuImg(t *testing.T) {
	requireTools(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeQcow2Disk(t, src, qcow2Disks["sparse"])
	qemu := filepath.Join(dir, "qemu.vhdx")
	qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", src, qemu)
	q := parseVHDX(t, qemu)
	if !q.headers[0].checksumOK || !q.headers[1].checksumOK || !q.regionsOK[0] || !q.regionsOK[1] {
		t.Fatalf("the parser finds qemu-img's checksums wrong: headers %v %v, regions %v",
			q.headers[0].checksumOK, q.headers[1].checksumOK, q.regionsOK)
	}

	out := filepath.Join(dir, "out.vhdx")
	writeVHDXFile(t, rawLayout(t, src), out, vhdxOptions{workers: 2})
	w := parseVHDX(t, out)
	checkVHDXStructure(t, w, src)
	if w.blockSize != q.blockSize || w.virtualSize != q.virtualSize || w.logicalSect != q.logicalSect || w.physSect != q.physSect {
		t.Errorf("block size %d, virtual size %d, sectors %d/%d; qemu-img: %d, %d, %d/%d", w.blockSize, w.virtualSize,
			w.logicalSect, w.physSect, q.blockSize, q.virtualSize, q.logicalSect, q.physSect)
	}
	var wantItems, gotItems []string
	for _, it := range q.items {
		wantItems = append(wantItems, fmt.Sprintf("%x flags %d length %d", it.guid, it.bits, it.length))
	}
	for _, it := range w.items {
		gotItems = append(gotItems, fmt.Sprintf("%x flags %d length %d", it.guid, it.bits, it.length))
	}
	if !slices.Equal(gotItems, wantItems) {
		t.Errorf("metadata items:\n%s\nqemu-img's:\n%s", strings.Join(gotItems, "\n"), strings.Join(wantItems, "\n"))
	}
	for i := range q.regions {
		if w.regions[i].guid != q.regions[i].guid {
			t.Errorf("region %d GUID %x, qemu-img's %x", i, w.regions[i].guid, q.regions[i].guid)
		}
	}
	// The same content: the same stored blocks in the same order, read
	// back the same.
	if w.size > q.size {
		t.Errorf("%d bytes, qemu-img's file %d", w.size, q.size)
	}
	if !strings.HasPrefix(w.creator, "winbake ") {
		t.Errorf("creator %q", w.creator)
	}
}

// TestVHDXWriterNewIdentity: two runs on the same disk give files with new
// GUIDs, as qemu-img and Hyper-V make them, and otherwise the same
// headers, BAT and payload bytes.
func TestVHDXWriterNewIdentity(t *testing.T) {
	requireTools(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeQcow2Disk(t, src, qcow2Disks["sparse"])
	layout := rawLayout(t, src)
	var runs []*parsedVHDX
	var payloads [][]byte
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("out%d.vhdx", i))
		writeVHDXFile(t, layout, out, vhdxOptions{workers: 2})
		v := parseVHDX(t, out)
		runs = append(runs, v)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// Everything after the metadata region: the payload blocks.
		end := 0
		for _, r := range v.regions {
			end = max(end, int(r.offset)+int(r.length))
		}
		payloads = append(payloads, b[end:])
	}
	a, b := runs[0], runs[1]
	if a.headers[0].fileWrite == b.headers[0].fileWrite || a.headers[0].dataWrite == b.headers[0].dataWrite || a.diskID == b.diskID {
		t.Error("two runs gave the same FileWriteGuid, DataWriteGuid or virtual disk ID")
	}
	if !slices.Equal(a.bat, b.bat) || a.headers[0].seq != b.headers[0].seq || a.size != b.size {
		t.Error("two runs differ in their BAT, sequence numbers or size")
	}
	if len(payloads[0]) == 0 || !bytes.Equal(payloads[0], payloads[1]) {
		t.Errorf("two runs differ in their payload blocks (%d and %d bytes)", len(payloads[0]), len(payloads[1]))
	}
}

// TestVHDXWriterHoles: the all-zero parts of a stored block are holes in
// the file, not written zeros.
func TestVHDXWriterHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	// One byte in a 256 MiB block.
	writeQcow2Disk(t, src, qcow2Disk{size: 256 << 20, writes: func(at func(int64, []byte)) { at(100<<20, []byte{1}) }})
	out := filepath.Join(dir, "out.vhdx")
	_, size := writeVHDXFile(t, rawLayout(t, src), out, vhdxOptions{blockSize: 256 << 20, workers: 2})
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	// st_blocks counts 512-byte units whatever the file system's block.
	if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 2<<20 {
		t.Errorf("%d bytes allocated for a file holding one non-zero byte and 4 MiB of mostly zero tables", used)
	}
	if size != 4<<20+256<<20 {
		t.Errorf("size %d, want the 4 MiB of headers, log, BAT and metadata and one 256 MiB block", size)
	}
}

// TestVHDXWriterFallsBack: vhdx is written from Go from raw and
// uncompressed qcow2 inputs, and by qemu-img from inputs only qemu-img can
// read (compressed clusters); the ui says which.
func TestVHDXWriterFallsBack(t *testing.T) {
	requireTools(t, "qemu-img")
	cases := []struct {
		input    string
		goWriter bool
	}{
		{"raw", true},
		{"qcow2", true},
		{"qcow2-zlib", false},
	}
	for _, tc := range cases {
		t.Run(tc.input, func(t *testing.T) {
			t.Parallel()
			in := newInput(t, tc.input)
			out := filepath.Join(t.TempDir(), "out.vhdx")
			p := configure(t, map[string]interface{}{"format": "vhdx", "output": out})
			ui := newTestUI()
			a, _, err := postProcess(context.Background(), p, ui, in)
			if err != nil {
				t.Fatalf("PostProcess: %v", err)
			}
			msgs := ui.messages()
			if got := strings.Contains(msgs, "Writing vhdx ("); got != tc.goWriter {
				t.Errorf("written from Go: %v, want %v; ui:\n%s", got, tc.goWriter, msgs)
			}
			if got := strings.Contains(msgs, "with qemu-img"); got == tc.goWriter {
				t.Errorf("converted by qemu-img: %v, want %v; ui:\n%s", got, !tc.goWriter, msgs)
			}
			// Hashed while writing: no read-back.
			if got := strings.Contains(msgs, "Computing SHA-256"); got == tc.goWriter {
				t.Errorf("read back for its SHA-256: %v, want %v; ui:\n%s", got, !tc.goWriter, msgs)
			}
			if got := fileSHA256(t, out); a.SHA256 != got || a.Format != "vhdx" {
				t.Errorf("artifact says sha256 %s format %s, the file hashes to %s", a.SHA256, a.Format, got)
			}
			checkRoundTrip(t, "vhdx", out)
		})
	}
}

// TestVHDXWriterSectorSizes: a virtual size that is not whole 512-byte
// sectors (which qemu-img info never reports, but VHDX could not hold) is
// left to qemu-img before anything is written, and so is nothing else.
func TestVHDXWriterSectorSizes(t *testing.T) {
	requireTools(t, "qemu-img")
	in := newInput(t, "raw")
	w := &writer{ctx: context.Background(), ui: newTestUI(), src: in, info: imageInfo{Format: "raw", VirtualSize: fixtureSize + 100}}
	wrote, err := w.writeVHDXGo()
	if wrote || err != nil {
		t.Errorf("writeVHDXGo of a %d-byte disk = %v, %v; want false, nil", fixtureSize+100, wrote, err)
	}
	w.info.VirtualSize = 64<<40 + 512
	if wrote, err := w.writeVHDXGo(); err == nil || !strings.Contains(err.Error(), "64 TiB") {
		t.Errorf("writeVHDXGo of a disk over 64 TiB = %v, %v; want an error naming 64 TiB", wrote, err)
	}
	for _, size := range []int64{0, 1000, 64<<40 + 512} {
		if _, err := newVHDXGeometry(size, 32<<20); err == nil || !strings.Contains(err.Error(), "512") {
			t.Errorf("geometry of a %d-byte disk: %v, want an error naming 512-byte sectors and 64 TiB", size, err)
		}
	}
	for _, bs := range []int64{512 << 10, 3 << 20, 512 << 20} {
		if _, err := newVHDXGeometry(1<<30, bs); err == nil || !strings.Contains(err.Error(), "1 MiB to 256 MiB") {
			t.Errorf("block size %d: %v, want an error naming 1 MiB to 256 MiB", bs, err)
		}
	}
}

// TestVHDXGeometry checks the BAT layout against [MS-VHDX] §2.5 for the
// block sizes qemu-img picks.
func TestVHDXGeometry(t *testing.T) {
	cases := []struct {
		size, blockSize               int64
		chunkRatio, entries, batBytes int64
	}{
		// 2^23 sectors of 512 bytes per chunk: 4 GiB.
		{16 << 30, 16 << 20, 256, 1024 + 3, 1 << 20},
		{1 << 30, 8 << 20, 512, 128, 1 << 20},
		{127 << 30, 32 << 20, 128, 4064 + 31, 1 << 20},
		{64 << 40, 64 << 20, 64, 1<<20 + (1<<20-1)/64, 9 << 20},
	}
	for _, c := range cases {
		if got := vhdxDefaultBlockSize(c.size); got != c.blockSize {
			t.Errorf("default block size of %d bytes: %d, want %d", c.size, got, c.blockSize)
		}
		g, err := newVHDXGeometry(c.size, c.blockSize)
		if err != nil {
			t.Fatal(err)
		}
		if g.chunkRatio != c.chunkRatio || g.batEntries != c.entries || g.batLength != c.batBytes {
			t.Errorf("%d/%d: chunk ratio %d, %d BAT entries, %d BAT bytes; want %d, %d, %d",
				c.size, c.blockSize, g.chunkRatio, g.batEntries, g.batLength, c.chunkRatio, c.entries, c.batBytes)
		}
		// The last payload block is the last entry.
		if g.batIndex(g.blocks-1) != g.batEntries-1 {
			t.Errorf("%d/%d: last block at entry %d of %d", c.size, c.blockSize, g.batIndex(g.blocks-1), g.batEntries)
		}
	}
}

// TestVHDXWriterCancel cancels the Go writer while it reads: the error is
// the context's and the output directory is empty.
func TestVHDXWriterCancel(t *testing.T) {
	checkWriterCancel(t, "vhdx", "read", "Writing vhdx")
}

// TestVHDXWriterRefusesShortInput: a raw input whose data extents cannot
// be read whole fails with an error naming the read, and nothing is left.
func TestVHDXWriterRefusesShortInput(t *testing.T) {
	requireTools(t, "qemu-img")
	in := newInput(t, "qcow2")
	fi, err := os.Stat(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(in, fi.Size()-128<<10); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	p := configure(t, map[string]interface{}{"format": "vhdx", "output": filepath.Join(outDir, "out.vhdx")})
	ui := newTestUI()
	_, _, err = postProcess(context.Background(), p, ui, in)
	if err == nil {
		t.Fatalf("PostProcess of a truncated qcow2 succeeded; ui:\n%s", ui.messages())
	}
	if !strings.Contains(err.Error(), "reading") && !strings.Contains(err.Error(), "qemu-img") {
		t.Errorf("error %q does not say what failed", err)
	}
	if names := dirNames(t, outDir); len(names) != 0 {
		t.Errorf("after the failure the output directory holds %v", names)
	}
}

// TestVHDXStoredBlocks: a block is stored when any one of its bytes is
// not zero, wherever that byte is in the pieces the first pass reads
// (4 KiB, then doubling), and not when its data extents hold only zeros.
func TestVHDXStoredBlocks(t *testing.T) {
	const bs = 2 << 20
	ones := []int64{0, 4095, 4096, 12287, 12288, 1<<20 - 1, 1 << 20, bs - 1}
	src := filepath.Join(t.TempDir(), "src.raw")
	size := int64(len(ones)+2)*bs + 8192
	writeQcow2Disk(t, src, qcow2Disk{size: size, writes: func(at func(int64, []byte)) {
		for i, off := range ones {
			at(int64(i)*bs, make([]byte, bs)) // allocated zeros around the byte
			at(int64(i)*bs+off, []byte{1})
		}
		at(int64(len(ones))*bs, make([]byte, bs)) // allocated zeros only
		// Block len(ones)+1 is a hole; the last, partial block has its
		// byte past the first 4 KiB piece.
		at(size-1, []byte{1})
	}})
	geo, err := newVHDXGeometry(size, bs)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := storedBlocks(context.Background(), rawLayout(t, src), geo, vhdxOptions{workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Repeat([]bool{true}, len(ones)), false, false, true)
	if !slices.Equal(stored, want) {
		t.Errorf("stored blocks %v, want %v", stored, want)
	}
}

// TestVHDXRetryBuffered: a write that direct I/O refuses (EINVAL; here a
// buffer that is not sector aligned) is written again without direct I/O,
// and the file stays without it.
func TestVHDXRetryBuffered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_DIRECT, 0o644)
	if err != nil {
		t.Fatalf("opening %s for direct I/O: %v", path, err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("vhdx"), 64<<10/4+1)[1 : 64<<10+1] // not aligned
	calls := 0
	write := func() error {
		calls++
		_, err := f.WriteAt(data, 0)
		return err
	}
	if err := retryBuffered(f, write); err != nil {
		t.Fatalf("retryBuffered: %v", err)
	}
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || flags&unix.O_DIRECT != 0 {
		t.Errorf("%d writes, direct I/O still on: %v; want the refused write, then a buffered one", calls, flags&unix.O_DIRECT != 0)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Error("the file does not hold what was written")
	}
	// Other errors are returned as they are, after one try.
	calls = 0
	if err := retryBuffered(f, func() error { calls++; return unix.ENOSPC }); !errors.Is(err, unix.ENOSPC) || calls != 1 {
		t.Errorf("retryBuffered of ENOSPC = %v after %d tries", err, calls)
	}
}

var faultSink byte

// TestVHDXGuardFault: reading the mapped input after the file shrank is an
// error naming the file, not a crash of the plugin.
func TestVHDXGuardFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 64<<10, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	err = guardFault(path, func() error {
		faultSink += m[32<<10]
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("guardFault = %v, want an error naming %s", err, path)
	}
	// Other panics are not errors.
	defer func() {
		if r := recover(); r != "not a fault" {
			t.Errorf("recovered %v, want the panic to go on", r)
		}
	}()
	_ = guardFault(path, func() error { panic("not a fault") })
}

// TestVHDXSegments: pieces whose data extents are 4 KiB aligned and inside
// the file are read from the mapped input, zeros between them; others are
// left to be copied.
func TestVHDXSegments(t *testing.T) {
	input := make([]byte, 1<<20)
	v := &vhdxBuilder{input: input, layout: &diskLayout{size: 4 << 20, extents: []dataExtent{
		{start: 8 << 10, length: 8 << 10, host: 64 << 10},
		{start: 64 << 10, length: 4 << 10, host: 1<<20 - 4<<10},
		{start: 1 << 20, length: 512, host: 0},           // not 4 KiB long
		{start: 2 << 20, length: 8 << 10, host: 1 << 20}, // past the end of the file
	}}}
	segs, ok := v.segments(0, 128<<10)
	type seg struct{ off, n, host int }
	var got []seg
	for _, s := range segs {
		host := -1
		if s.data != nil {
			host = cap(input) - cap(s.data) // where in input the slice starts
		}
		got = append(got, seg{s.off, s.n, host})
	}
	want := []seg{{0, 8 << 10, -1}, {8 << 10, 8 << 10, 64 << 10}, {16 << 10, 48 << 10, -1}, {64 << 10, 4 << 10, 1<<20 - 4<<10}, {68 << 10, 60 << 10, -1}}
	if !ok || !slices.Equal(got, want) {
		t.Errorf("segments = %v, %v; want %v", got, ok, want)
	}
	if _, ok := v.segments(1<<20, 64<<10); ok {
		t.Error("a 512-byte extent was to be written from the mapping")
	}
	if _, ok := v.segments(2<<20, 64<<10); ok {
		t.Error("an extent past the end of the file was to be read from the mapping")
	}
	if segs, ok := v.segments(3<<20, 64<<10); !ok || len(segs) != 1 || segs[0].data != nil {
		t.Errorf("a hole: %v, %v; want one run of zeros", segs, ok)
	}
}
