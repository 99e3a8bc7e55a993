package compress

import (
	"bytes"
	stdzlib "compress/zlib"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/zlib"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// A stream-optimized VMDK written from Go: VMware's "Virtual Disk Format
// 5.0" hosted sparse extent (header, embedded descriptor, grain directory
// and grain tables, grains compressed with deflate and each preceded by a
// grain marker), laid out the way QEMU's block/vmdk.c writes it
// (vmdk_init_extent, vmdk_co_do_create, vmdk_write_extent) so that every
// reader of qemu-img's streamOptimized output reads it:
//
//	header | descriptor (20 sectors) | redundant GD | redundant GTs | GD | GTs | grains
//
// The grain directory is in the header, not at the end of the file behind
// a footer (gdOffset GD_AT_END): OpenStack's image format inspector
// (oslo.utils format_inspector VMDKInspector.post_process, used by Glance,
// Nova and Cinder) refuses VMDK files with a footer. Every grain table is
// allocated, as QEMU allocates them; an all-zero grain gets no grain (its
// table entry 0 reads as zeros, there being no parent). Grain table entries
// hold grain sectors, so the offsets are known only once every grain before
// them is compressed: the metadata is written after the grains, and the
// SHA-256 taken in one sequential read of the finished file.
const (
	vmdkMagic   = 0x564d444b // "KDMV" read as a little-endian uint32
	vmdkVersion = 3          // QEMU writes 3 for compressed extents

	vmdkFlagNewlineDetect = 1 << 0
	vmdkFlagRedundantGD   = 1 << 1
	vmdkFlagCompressed    = 1 << 16
	vmdkFlagMarkers       = 1 << 17
	vmdkCompressDeflate   = 1

	vmdkSector       = 512
	vmdkGrainSectors = 128 // 64 KiB grains, QEMU's and VMware's
	vmdkGrainSize    = vmdkGrainSectors * vmdkSector
	vmdkGTEsPerGT    = 512
	vmdkGTSectors    = vmdkGTEsPerGT * 4 / vmdkSector
	vmdkDescSectors  = 20 // QEMU's DESC_SIZE: room to edit the descriptor in place
	vmdkMarkerSize   = 12 // grain marker: lba uint64, size uint32

	// Grain table entries are 32-bit sector numbers.
	vmdkMaxSectors = int64(1) << 32

	// vmdkJobGrains is how many grains one worker reads and compresses at
	// a time.
	vmdkJobGrains = 16
)

// vmdkOptions choose how the image is written.
type vmdkOptions struct {
	extentName string // the file name in the descriptor's extent line
	cid        uint32 // the descriptor's content ID
	workers    int
	progress   func(n int64) // guest bytes done, called in order
	hashing    func()        // called when the SHA-256 pass starts
}

// vmdkGeometry is where the metadata goes, in sectors, as vmdk_init_extent
// places it.
type vmdkGeometry struct {
	capacity    int64 // guest sectors
	grains      int64
	gtCount     int64
	gdSectors   int64
	rgdOffset   int64
	gdOffset    int64
	grainOffset int64 // first sector after the metadata, a whole grain
}

func newVMDKGeometry(size int64) (vmdkGeometry, error) {
	if size <= 0 || size%vmdkSector != 0 {
		return vmdkGeometry{}, fmt.Errorf("vmdk: virtual size %d is not a whole number of 512-byte sectors", size)
	}
	g := vmdkGeometry{capacity: size / vmdkSector}
	g.grains = (g.capacity + vmdkGrainSectors - 1) / vmdkGrainSectors
	g.gtCount = (g.grains + vmdkGTEsPerGT - 1) / vmdkGTEsPerGT
	g.gdSectors = (g.gtCount*4 + vmdkSector - 1) / vmdkSector
	g.rgdOffset = 1 + vmdkDescSectors
	g.gdOffset = g.rgdOffset + g.gdSectors + g.gtCount*vmdkGTSectors
	g.grainOffset = alignUp(g.gdOffset+g.gdSectors+g.gtCount*vmdkGTSectors, vmdkGrainSectors)
	if g.capacity >= vmdkMaxSectors {
		return vmdkGeometry{}, fmt.Errorf("vmdk: a sparse extent holds less than 2 TiB, the disk has %d bytes", size)
	}
	return g, nil
}

// writeVMDK writes the guest bytes of layout to the file f as a
// stream-optimized VMDK, and returns the image's SHA-256 and size.
func writeVMDK(ctx context.Context, layout *diskLayout, f *os.File, opts vmdkOptions) (string, int64, error) {
	geo, err := newVMDKGeometry(layout.size)
	if err != nil {
		return "", 0, err
	}
	v := &vmdkBuilder{
		geo:    geo,
		layout: layout,
		file:   f,
		out:    gatherWriter{file: f},
		opts:   opts,
		gte:    make([]uint32, geo.gtCount*vmdkGTEsPerGT),
		next:   geo.grainOffset * vmdkSector,
	}
	if err := v.writeGrains(ctx); err != nil {
		return "", 0, err
	}
	if err := v.writeMetadata(); err != nil {
		return "", 0, err
	}
	if opts.hashing != nil {
		opts.hashing()
	}
	return hashFileRange(ctx, f, v.next)
}

// vmdkBuilder places grains in the file and keeps the grain tables.
type vmdkBuilder struct {
	geo    vmdkGeometry
	layout *diskLayout
	file   *os.File
	opts   vmdkOptions

	gte  []uint32 // grain table entries of every grain, in guest order
	next int64    // where the next grain goes, sector aligned

	out gatherWriter

	bufs, outs sync.Pool
	encoders   sync.Pool
}

type vmdkJob struct {
	first  int64 // first grain
	n      int
	buf    *[]byte // n guest grains
	outBuf *[]byte // holds out
	out    []byte  // the stored grains, marker and padding included
	ends   []int   // end in out of each grain's bytes; equal to the previous end when all zero
}

// writeGrains reads, compresses (on all workers) and appends every grain
// holding data, in guest order.
func (v *vmdkBuilder) writeGrains(ctx context.Context) error {
	bufSize := vmdkJobGrains * vmdkGrainSize
	v.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	v.outs.New = func() any { b := make([]byte, 0, bufSize+bufSize/8); return &b }
	v.encoders.New = func() any { return newGrainEncoder() }
	feed := func(emit func(*vmdkJob) bool) {
		for _, r := range v.grainRuns() {
			for g := r[0]; g < r[1]; g += vmdkJobGrains {
				if !emit(&vmdkJob{first: g, n: int(min(vmdkJobGrains, r[1]-g))}) {
					return
				}
			}
		}
	}
	if err := orderedWork(ctx, v.opts.workers, feed, v.prepare, v.collect); err != nil {
		return err
	}
	return v.out.flush()
}

// grainRuns returns the runs of grains that hold data extents, as
// [first, end) grain indexes.
func (v *vmdkBuilder) grainRuns() [][2]int64 {
	var runs [][2]int64
	for _, e := range v.layout.extents {
		first := e.start / vmdkGrainSize
		end := (e.end() + vmdkGrainSize - 1) / vmdkGrainSize
		if n := len(runs); n > 0 && first <= runs[n-1][1] {
			runs[n-1][1] = max(runs[n-1][1], end)
			continue
		}
		runs = append(runs, [2]int64{first, end})
	}
	return runs
}

// prepare reads the job's grains and compresses each one that is not all
// zeros.
func (v *vmdkBuilder) prepare(j *vmdkJob) error {
	j.buf = v.bufs.Get().(*[]byte)
	j.outBuf = v.outs.Get().(*[]byte)
	j.out = (*j.outBuf)[:0]
	data := (*j.buf)[:j.n*vmdkGrainSize]
	// The last grain reaches past the virtual size when it is not a whole
	// grain: readAt gives zeros there, and the grain is compressed whole,
	// as VirtualBox's reader (vmdkFileInflateSync) wants a whole grain.
	if _, err := v.layout.readAt(data, j.first*vmdkGrainSize); err != nil {
		return err
	}
	enc := v.encoders.Get().(*grainEncoder)
	defer v.encoders.Put(enc)
	j.ends = make([]int, j.n)
	for i := range j.n {
		grain := data[i*vmdkGrainSize : (i+1)*vmdkGrainSize]
		if !isZero(grain) {
			lba := uint64(j.first+int64(i)) * vmdkGrainSectors
			var err error
			if j.out, err = enc.appendGrain(j.out, grain, lba); err != nil {
				return err
			}
		}
		j.ends[i] = len(j.out)
	}
	return nil
}

func (v *vmdkBuilder) collect(j *vmdkJob) error {
	start := 0
	for i, end := range j.ends {
		if end == start {
			continue
		}
		sector := v.next / vmdkSector
		if sector >= vmdkMaxSectors {
			return fmt.Errorf("vmdk: the grains outgrow the 2 TiB a sparse extent can address")
		}
		v.gte[j.first+int64(i)] = uint32(sector)
		if err := v.out.writeAt(j.out[start:end], v.next); err != nil {
			return err
		}
		v.next += int64(end - start)
		start = end
	}
	v.bufs.Put(j.buf)
	*j.outBuf = j.out[:0]
	v.outs.Put(j.outBuf)
	j.buf, j.outBuf, j.out = nil, nil, nil
	if v.opts.progress != nil {
		v.opts.progress(min(int64(j.n)*vmdkGrainSize, v.layout.size-j.first*vmdkGrainSize))
	}
	return nil
}

// writeMetadata writes everything before the grains: the header, the
// descriptor, and the grain directory and tables twice (the redundant copy
// first, as QEMU places it).
func (v *vmdkBuilder) writeMetadata() error {
	g := v.geo
	meta := make([]byte, g.grainOffset*vmdkSector)
	copy(meta, v.header())
	desc := v.descriptor()
	if len(desc) > vmdkDescSectors*vmdkSector {
		return fmt.Errorf("vmdk: descriptor of %d bytes does not fit %d sectors", len(desc), vmdkDescSectors)
	}
	copy(meta[vmdkSector:], desc)
	le := binary.LittleEndian
	for _, gd := range []int64{g.rgdOffset, g.gdOffset} {
		gtStart := gd + g.gdSectors
		for i := range g.gtCount {
			le.PutUint32(meta[gd*vmdkSector+i*4:], uint32(gtStart+i*vmdkGTSectors))
		}
		tables := meta[gtStart*vmdkSector:]
		for i, e := range v.gte {
			if e != 0 {
				le.PutUint32(tables[i*4:], e)
			}
		}
	}
	_, err := v.file.WriteAt(meta, 0)
	return err
}

// header returns the sparse extent header (SparseExtentHeader in VMware's
// format, VMDK4Header in QEMU).
func (v *vmdkBuilder) header() []byte {
	g := v.geo
	h := make([]byte, vmdkSector)
	le := binary.LittleEndian
	le.PutUint32(h[0:], vmdkMagic)
	le.PutUint32(h[4:], vmdkVersion)
	le.PutUint32(h[8:], vmdkFlagNewlineDetect|vmdkFlagRedundantGD|vmdkFlagCompressed|vmdkFlagMarkers)
	le.PutUint64(h[12:], uint64(g.capacity))
	le.PutUint64(h[20:], vmdkGrainSectors)
	le.PutUint64(h[28:], 1) // descriptorOffset
	le.PutUint64(h[36:], vmdkDescSectors)
	le.PutUint32(h[44:], vmdkGTEsPerGT)
	le.PutUint64(h[48:], uint64(g.rgdOffset))
	le.PutUint64(h[56:], uint64(g.gdOffset))
	le.PutUint64(h[64:], uint64(g.grainOffset)) // overHead
	// 72: uncleanShutdown 0; then the newline-detection characters a
	// transfer that rewrites line ends would change.
	copy(h[73:], "\n \r\n")
	le.PutUint16(h[77:], vmdkCompressDeflate)
	return h
}

// descriptor returns the embedded descriptor, with the fields and DDB
// values qemu-img writes by default (vmdk_co_do_create).
func (v *vmdkBuilder) descriptor() []byte {
	const heads, sectorsPerTrack = 16, 63
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n", v.opts.cid)
	fmt.Fprintf(&b, "# Extent description\nRW %d SPARSE \"%s\"\n\n", v.geo.capacity, descriptorFileName(v.opts.extentName))
	b.WriteString("# The Disk Data Base\n#DDB\n\n")
	b.WriteString("ddb.virtualHWVersion = \"4\"\n")
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\n", v.layout.size/(sectorsPerTrack*heads*vmdkSector))
	fmt.Fprintf(&b, "ddb.geometry.heads = \"%d\"\n", heads)
	fmt.Fprintf(&b, "ddb.geometry.sectors = \"%d\"\n", sectorsPerTrack)
	b.WriteString("ddb.adapterType = \"ide\"\n")
	b.WriteString("ddb.toolsVersion = \"2147483647\"\n")
	return []byte(b.String())
}

// descriptorFileName makes name safe for the extent line: printable ASCII
// without quotes or slashes. OpenStack's format inspector refuses a
// descriptor that is not ASCII or whose extent line holds a '/'; readers
// of a monolithic image do not open the extent by this name.
func descriptorFileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, name)
}

// grainEncoder compresses grains as zlib streams (RFC 1950), which QEMU
// inflates with uncompress() and VMware's format calls deflate grains.
// A fast pass finds the grains that do not compress (it stores them, as
// zlib's level 6 ends up doing, in fewer bytes); the others are compressed
// with the standard library's level 6, whose output on 64 KiB text grains
// is a little smaller than zlib's default level that qemu-img uses, so the
// image is no larger than qemu-img's.
type grainEncoder struct {
	fast, best *bytes.Buffer
	fastZ      *zlib.Writer
	bestZ      *stdzlib.Writer
}

func newGrainEncoder() *grainEncoder {
	e := &grainEncoder{fast: new(bytes.Buffer), best: new(bytes.Buffer)}
	// Levels that exist cannot fail.
	e.fastZ, _ = zlib.NewWriterLevel(e.fast, zlib.BestSpeed)
	e.bestZ, _ = stdzlib.NewWriterLevel(e.best, stdzlib.DefaultCompression)
	return e
}

// appendGrain appends the grain marker, the compressed grain and the
// padding to the next sector to dst.
func (e *grainEncoder) appendGrain(dst, grain []byte, lba uint64) ([]byte, error) {
	e.fast.Reset()
	e.fastZ.Reset(e.fast)
	if _, err := e.fastZ.Write(grain); err != nil {
		return dst, err
	}
	if err := e.fastZ.Close(); err != nil {
		return dst, err
	}
	z := e.fast.Bytes()
	if len(z) < len(grain) {
		e.best.Reset()
		e.bestZ.Reset(e.best)
		if _, err := e.bestZ.Write(grain); err != nil {
			return dst, err
		}
		if err := e.bestZ.Close(); err != nil {
			return dst, err
		}
		if e.best.Len() < len(z) {
			z = e.best.Bytes()
		}
	}
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, lba)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(z)))
	dst = append(dst, z...)
	if pad := (vmdkSector - (len(dst)-start)%vmdkSector) % vmdkSector; pad > 0 {
		dst = append(dst, make([]byte, pad)...)
	}
	return dst, nil
}

// writeVMDKGo writes a vmdk output from Go when the input's guest bytes can
// be read from its file (raw, or qcow2 without compressed clusters, backing
// file or external data file) and its virtual size is whole sectors below
// 2 TiB. It reports false, having written nothing, when the output is left
// to qemu-img.
func (w *writer) writeVMDKGo() (bool, error) {
	if _, err := newVMDKGeometry(w.info.VirtualSize); err != nil {
		return false, nil
	}
	layout, ok, err := readLayout(w.ctx, w.src, w.info)
	if err != nil || !ok {
		return false, err
	}
	defer func() { _ = layout.Close() }()
	workers := runtime.GOMAXPROCS(0)
	w.ui.Say(fmt.Sprintf("Writing stream-optimized vmdk (deflate, %d cores) from the %s of data in %s (%s virtual)...",
		workers, progress.Bytes(layout.dataBytes()), filepath.Base(w.src), progress.Bytes(layout.size)))

	// Not O_TRUNC: see writeStream.
	f, err := os.OpenFile(w.partial, os.O_RDWR, 0)
	if err != nil {
		return true, err
	}
	defer f.Close()
	var cid [4]byte
	if _, err := rand.Read(cid[:]); err != nil {
		return true, err
	}
	var total int64
	tmp := &vmdkBuilder{layout: layout}
	for _, r := range tmp.grainRuns() {
		total += min(r[1]*vmdkGrainSize, layout.size) - r[0]*vmdkGrainSize
	}
	add, done := w.progress(filepath.Base(w.src), total)
	defer done()
	sum, _, err := writeVMDK(w.ctx, layout, f, vmdkOptions{
		extentName: filepath.Base(w.out),
		cid:        binary.LittleEndian.Uint32(cid[:]),
		workers:    workers,
		progress:   add,
		hashing:    func() { done(); w.ui.Say(fmt.Sprintf("Computing SHA-256 of %s...", filepath.Base(w.out))) },
	})
	if err != nil {
		if ctxErr := w.ctx.Err(); ctxErr != nil {
			return true, ctxErr
		}
		return true, fmt.Errorf("writing vmdk: %w", err)
	}
	w.sha256 = sum
	return true, f.Close()
}
