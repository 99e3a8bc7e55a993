package compress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// A qcow2 image written from Go, following QEMU's docs/interop/qcow2.txt:
// version 3, 16-bit refcounts, no backing file, no snapshots, no extended
// L2 entries. Each guest cluster holding data is compressed on its own as a
// single zstd frame, which is what QEMU reads (block/qcow2-threads.c,
// qcow2_zstd_decompress: it decompresses frames until it has a whole
// cluster and ignores what follows), or stored as a standard cluster when
// compressing does not make it smaller (as block/qcow2.c does when
// qcow2_co_compress reports -ENOMEM). Unallocated and all-zero guest
// clusters get no host cluster: with no backing file they read as zeros.
// Guest clusters with the same content share one host cluster (or one run
// of compressed bytes), as clusters shared with an internal snapshot do:
// its refcount counts the guest clusters, and a guest write to it copies
// it first (the L2 entries lack the "refcount is exactly one" flag). A
// cluster whose content an earlier one already has is not compressed
// again: it is compared byte for byte with what that cluster stored and
// shares it.
//
// The file is laid out as
//
//	header | data (standard and compressed clusters) | L2 tables | L1 table | refcount blocks | refcount table
//
// Every host offset in the metadata depends on the compressed size of every
// cluster before it, so the metadata is written once the data is, and the
// SHA-256 is taken in one sequential read of the finished file.
const (
	qcow2Magic         = 0x514649fb // "QFI\xfb"
	qcow2Version       = 3
	qcow2HeaderLength  = 112 // the v3 fields, compression_type and padding to 8
	qcow2RefcountOrder = 4   // 16-bit refcounts, QEMU's default
	qcow2RefcountMax   = 1<<16 - 1

	// incompatible_features bit 3: compression_type is not zlib.
	qcow2IncompatCompressionType = 1 << 3
	qcow2CompressionTypeZstd     = 1

	// L1 and L2 entry flags.
	qcow2Copied     = uint64(1) << 63 // refcount is exactly one
	qcow2Compressed = uint64(1) << 62

	qcow2SectorBits = 9 // compressed cluster sizes count 512-byte sectors

	// qcow2DefaultClusterBits is QEMU's default cluster size, 64 KiB.
	qcow2DefaultClusterBits = 16

	// qcow2JobClusters is how many guest clusters one worker reads and
	// compresses at a time.
	qcow2JobClusters = 16
)

// qcow2Options choose how the image is written.
type qcow2Options struct {
	clusterBits int  // 9..21; QEMU's default is 16
	zstd        bool // compress clusters with zstd; false: standard clusters only
	level       zstd.EncoderLevel
	workers     int
	progress    func(n int64) // guest bytes done, called in order
	hashing     func()        // called when the SHA-256 pass starts
}

// qcow2Geometry holds the sizes that follow from the cluster size.
type qcow2Geometry struct {
	bits            uint
	size            int64  // cluster size
	l2Entries       int64  // entries per L2 table
	refblockEntries int64  // refcounts per refcount block
	csizeShift      uint   // compressed descriptor: where the sector count starts
	csizeMask       uint64 // and its width
	offsetMask      uint64 // compressed descriptor: host offset bits
}

func newQcow2Geometry(bits int) (qcow2Geometry, error) {
	if bits < 9 || bits > 21 {
		return qcow2Geometry{}, fmt.Errorf("qcow2 cluster_bits %d: QEMU reads 9 to 21", bits)
	}
	g := qcow2Geometry{bits: uint(bits), size: 1 << bits}
	g.l2Entries = g.size / 8
	g.refblockEntries = g.size * 8 / (1 << qcow2RefcountOrder)
	// "Compressed Clusters Descriptor (x = 62 - (cluster_bits - 8))".
	x := uint(62 - (bits - 8))
	g.csizeShift = x
	g.csizeMask = 1<<(62-x) - 1
	g.offsetMask = 1<<x - 1
	return g, nil
}

// writeQcow2 writes the guest bytes of layout to the file f as a qcow2
// image, and returns the image's SHA-256 and size.
func writeQcow2(ctx context.Context, layout *diskLayout, f *os.File, opts qcow2Options) (string, int64, error) {
	geo, err := newQcow2Geometry(opts.clusterBits)
	if err != nil {
		return "", 0, err
	}
	if opts.workers < 1 {
		opts.workers = 1
	}
	q := &qcow2Builder{
		geo:    geo,
		layout: layout,
		file:   f,
		out:    gatherWriter{file: f},
		opts:   opts,
		l2:     map[int64][]uint64{},
		stored: map[uint64]qcow2Stored{},
		claims: map[uint64]int64{},
		// Host cluster 0 is the header.
		next: geo.size,
		refs: []uint16{1},
	}
	if opts.zstd {
		// QEMU's libzstd frames carry no checksum unless asked for one,
		// and qcow2 has no use for it.
		q.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(opts.level),
			zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(opts.workers))
		if err != nil {
			return "", 0, err
		}
		defer func() { _ = q.enc.Close() }()
		if q.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)); err != nil {
			return "", 0, err
		}
		defer q.dec.Close()
	}
	if err := q.writeData(ctx); err != nil {
		return "", 0, err
	}
	if err := q.writeMetadata(); err != nil {
		return "", 0, err
	}
	if opts.hashing != nil {
		opts.hashing()
	}
	return hashFileRange(ctx, f, q.fileSize)
}

// qcow2Builder places clusters in the host file and keeps the tables that
// describe them.
type qcow2Builder struct {
	geo    qcow2Geometry
	layout *diskLayout
	file   *os.File
	opts   qcow2Options
	enc    *zstd.Encoder

	l2   map[int64][]uint64 // L1 index -> L2 table
	refs []uint16           // refcount of each host cluster

	stored  map[uint64]qcow2Stored // by xxhash of the guest bytes
	scratch []byte                 // stored bytes read back for comparing
	plain   []byte                 // and decompressed
	dec     *zstd.Decoder

	// claims maps the xxhash of a cluster's guest bytes to the first guest
	// cluster a worker saw with them: later ones with the same hash are
	// left for the collector to share instead of compressed again.
	claimsMu sync.Mutex
	claims   map[uint64]int64

	next int64       // first byte after everything placed so far
	gaps []qcow2Span // unused bytes left before aligned standard clusters

	out        gatherWriter
	fileSize   int64
	l1Size     int64
	l1Offset   int64
	rtOffset   int64
	rtClusters int64
}

type qcow2Span struct{ off, n int64 }

// qcow2Stored is a cluster's stored bytes that later guest clusters with the
// same guest bytes may share.
type qcow2Stored struct {
	kind   uint8
	off, n int64
	first  int64 // the guest cluster that stored it
	shared bool
}

// Kinds of guest cluster in a job.
const (
	clusterZero = iota
	clusterStandard
	clusterCompressed
	// clusterRepeat: an earlier guest cluster has the same xxhash; not
	// compressed, the collector shares or else stores it.
	clusterRepeat
)

type qcow2Cluster struct {
	kind       uint8
	start, end int    // compressed bytes in job.out
	sum        uint64 // xxhash of the guest bytes
}

type qcow2Job struct {
	first    int64 // first guest cluster
	n        int
	buf      *[]byte // n guest clusters
	outBuf   *[]byte // holds out
	out      []byte  // compressed clusters, one after the other
	clusters []qcow2Cluster
	err      error
	done     chan struct{}
}

// clusterRuns returns the runs of guest clusters that hold data, as
// [first, end) cluster indexes.
func (q *qcow2Builder) clusterRuns() [][2]int64 {
	var runs [][2]int64
	for _, e := range q.layout.extents {
		first := e.start >> q.geo.bits
		end := (e.end() + q.geo.size - 1) >> q.geo.bits
		if n := len(runs); n > 0 && first <= runs[n-1][1] {
			runs[n-1][1] = max(runs[n-1][1], end)
			continue
		}
		runs = append(runs, [2]int64{first, end})
	}
	return runs
}

// writeData reads, compresses (on all workers) and places every guest
// cluster holding data, in guest order.
func (q *qcow2Builder) writeData(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runs := q.clusterRuns()
	jobs := make(chan *qcow2Job)
	ordered := make(chan *qcow2Job, 4*q.opts.workers)
	bufSize := qcow2JobClusters * int(q.geo.size)
	// Buffers go round: a job holds one guest buffer and one for its
	// compressed clusters until the collector has written them.
	bufs := sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	outs := sync.Pool{New: func() any { b := make([]byte, 0, bufSize+bufSize/8); return &b }}

	var wg sync.WaitGroup
	for range q.opts.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.err = q.prepare(j, &bufs, &outs)
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(jobs)
		for _, r := range runs {
			for c := r[0]; c < r[1]; c += qcow2JobClusters {
				j := &qcow2Job{first: c, n: int(min(qcow2JobClusters, r[1]-c)), done: make(chan struct{})}
				select {
				case ordered <- j:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- j:
				case <-ctx.Done():
					close(j.done)
					return
				}
			}
		}
	}()

	err := q.collect(ctx, ordered, &bufs, &outs)
	cancel()
	for range ordered { // let the feeder finish
	}
	wg.Wait()
	return err
}

// prepare reads the job's guest clusters and compresses each one that is
// not all zeros.
func (q *qcow2Builder) prepare(j *qcow2Job, bufs, outs *sync.Pool) error {
	cs := int(q.geo.size)
	j.buf = bufs.Get().(*[]byte)
	j.outBuf = outs.Get().(*[]byte)
	j.out = (*j.outBuf)[:0]
	data := (*j.buf)[:j.n*cs]
	if _, err := q.layout.readAt(data, j.first*q.geo.size); err != nil {
		return err
	}
	j.clusters = make([]qcow2Cluster, j.n)
	for i := range j.clusters {
		c := data[i*cs : (i+1)*cs]
		if isZero(c) {
			j.clusters[i].kind = clusterZero
			continue
		}
		sum := xxhash.Sum64(c)
		if q.repeats(sum, j.first+int64(i)) {
			j.clusters[i] = qcow2Cluster{kind: clusterRepeat, sum: sum}
			continue
		}
		j.out = q.encode(c, j.out, &j.clusters[i])
		j.clusters[i].sum = sum
	}
	return nil
}

// repeats reports whether an earlier guest cluster than guest had the
// guest bytes hashing to sum, and otherwise claims the hash for guest.
func (q *qcow2Builder) repeats(sum uint64, guest int64) bool {
	q.claimsMu.Lock()
	defer q.claimsMu.Unlock()
	if first, ok := q.claims[sum]; ok && first < guest {
		return true
	}
	q.claims[sum] = guest
	return false
}

// encode appends the stored form of the guest cluster c to out and sets
// the kind and place of cl: compressed, or standard when compressing does
// not make it smaller (as QEMU writes one).
func (q *qcow2Builder) encode(c, out []byte, cl *qcow2Cluster) []byte {
	if q.enc == nil {
		cl.kind = clusterStandard
		return out
	}
	start := len(out)
	out = q.enc.EncodeAll(c, out)
	if len(out)-start >= len(c) {
		cl.kind = clusterStandard
		return out[:start]
	}
	cl.kind, cl.start, cl.end = clusterCompressed, start, len(out)
	return out
}

func (q *qcow2Builder) collect(ctx context.Context, ordered <-chan *qcow2Job, bufs, outs *sync.Pool) error {
	cs := q.geo.size
	for j := range ordered {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if j.err != nil {
			return j.err
		}
		for i, c := range j.clusters {
			if c.kind == clusterZero {
				continue
			}
			guest := j.first + int64(i)
			raw := (*j.buf)[int64(i)*cs : int64(i+1)*cs]
			entry, err := q.share(c.sum, raw)
			if err != nil {
				return err
			}
			if entry == 0 {
				out := j.out
				if c.kind == clusterRepeat {
					// The cluster it repeats was not stored first or held
					// other bytes after all: compress this one here.
					out = q.encode(raw, nil, &c)
				}
				stored := raw
				if c.kind == clusterCompressed {
					stored = out[c.start:c.end]
				}
				if entry, err = q.store(guest, c, stored); err != nil {
					return err
				}
			}
			q.setL2(guest, entry)
		}
		bufs.Put(j.buf) // write copied what it keeps
		*j.outBuf = j.out[:0]
		outs.Put(j.outBuf)
		j.buf, j.outBuf, j.out = nil, nil, nil
		if q.opts.progress != nil {
			q.opts.progress(min(int64(j.n)*cs, q.layout.size-j.first*cs))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.out.flush()
}

// store places and writes a cluster's bytes and returns its L2 entry.
func (q *qcow2Builder) store(guest int64, c qcow2Cluster, data []byte) (uint64, error) {
	n := int64(len(data))
	var off int64
	if c.kind == clusterStandard {
		off = q.placeStandard()
	} else {
		off = q.placeCompressed(n)
	}
	if err := q.out.writeAt(data, off); err != nil {
		return 0, err
	}
	if err := q.ref(off, n); err != nil {
		return 0, err
	}
	if _, seen := q.stored[c.sum]; !seen {
		q.stored[c.sum] = qcow2Stored{kind: c.kind, off: off, n: n, first: guest}
	}
	return q.entry(c.kind, off, n, false)
}

// entry is the L2 entry of a cluster stored at off.
func (q *qcow2Builder) entry(kind uint8, off, n int64, shared bool) (uint64, error) {
	if kind == clusterStandard {
		if shared {
			return uint64(off), nil
		}
		return uint64(off) | qcow2Copied, nil
	}
	sectors := uint64((off+n-1)>>qcow2SectorBits - off>>qcow2SectorBits)
	if uint64(off) > q.geo.offsetMask || sectors > q.geo.csizeMask {
		return 0, fmt.Errorf("qcow2: compressed cluster at %d (%d bytes) does not fit a descriptor", off, n)
	}
	return qcow2Compressed | sectors<<q.geo.csizeShift | uint64(off), nil
}

// share returns the L2 entry of an earlier stored cluster whose guest
// bytes hash to sum and equal raw, compared byte for byte (a compressed
// one decompressed first), or 0 when there is none to share.
func (q *qcow2Builder) share(sum uint64, raw []byte) (uint64, error) {
	s, ok := q.stored[sum]
	if !ok {
		return 0, nil
	}
	for h := s.off >> q.geo.bits; h <= (s.off+s.n-1)>>q.geo.bits; h++ {
		if q.refs[h] == qcow2RefcountMax {
			return 0, nil
		}
	}
	old, err := q.readStored(s.off, s.n)
	if err != nil {
		return 0, err
	}
	if s.kind == clusterCompressed {
		if q.plain, err = q.dec.DecodeAll(old, q.plain[:0]); err != nil {
			return 0, fmt.Errorf("decompressing back cluster at %d: %w", s.off, err)
		}
		old = q.plain
	}
	if !bytes.Equal(old, raw) {
		return 0, nil
	}
	if err := q.ref(s.off, s.n); err != nil {
		return 0, err
	}
	if !s.shared && s.kind == clusterStandard {
		// Its first guest cluster no longer owns it alone.
		first, err := q.entry(s.kind, s.off, s.n, true)
		if err != nil {
			return 0, err
		}
		q.setL2(s.first, first)
	}
	s.shared = true
	q.stored[sum] = s
	return q.entry(s.kind, s.off, s.n, true)
}

// readStored returns the n bytes stored at off: from the bytes not yet
// written when they are there, else read back from the file.
func (q *qcow2Builder) readStored(off, n int64) ([]byte, error) {
	if b, ok := q.out.held(off, n); ok {
		return b, nil
	}
	if err := q.out.flush(); err != nil {
		return nil, err
	}
	if int64(cap(q.scratch)) < n {
		q.scratch = make([]byte, n)
	}
	old := q.scratch[:n]
	if _, err := q.file.ReadAt(old, off); err != nil {
		return nil, fmt.Errorf("reading back cluster at %d: %w", off, err)
	}
	return old, nil
}

// placeStandard returns the host offset of a new standard cluster: the
// next aligned one. The unaligned bytes skipped to reach it become a gap
// later compressed clusters may fill.
func (q *qcow2Builder) placeStandard() int64 {
	off := alignUp(q.next, q.geo.size)
	if off > q.next {
		q.addGap(q.next, off-q.next)
	}
	q.next = off + q.geo.size
	return off
}

// placeCompressed returns the host offset for n compressed bytes: the
// first gap they fit, else the end of what is placed.
func (q *qcow2Builder) placeCompressed(n int64) int64 {
	for i := range q.gaps {
		if g := &q.gaps[i]; g.n >= n {
			off := g.off
			g.off += n
			g.n -= n
			if g.n < 64 {
				q.gaps = append(q.gaps[:i], q.gaps[i+1:]...)
			}
			return off
		}
	}
	off := q.next
	q.next += n
	return off
}

// maxGaps bounds the gap list; the smallest gap is given up first.
const maxGaps = 64

func (q *qcow2Builder) addGap(off, n int64) {
	if len(q.gaps) == maxGaps {
		smallest := 0
		for i, g := range q.gaps {
			if g.n < q.gaps[smallest].n {
				smallest = i
			}
		}
		if q.gaps[smallest].n >= n {
			return
		}
		q.gaps = append(q.gaps[:smallest], q.gaps[smallest+1:]...)
	}
	q.gaps = append(q.gaps, qcow2Span{off, n})
}

// ref adds one reference to every host cluster the n bytes at off touch.
// A sector never spans two clusters, so these are the clusters QEMU's
// check counts for a compressed cluster's sectors too.
func (q *qcow2Builder) ref(off, n int64) error {
	first, last := off>>q.geo.bits, (off+n-1)>>q.geo.bits
	for int64(len(q.refs)) <= last {
		q.refs = append(q.refs, 0)
	}
	for c := first; c <= last; c++ {
		if q.refs[c] == qcow2RefcountMax {
			return fmt.Errorf("qcow2: host cluster %d would be referenced more than %d times", c, qcow2RefcountMax)
		}
		q.refs[c]++
	}
	return nil
}

func (q *qcow2Builder) setL2(guest int64, entry uint64) {
	l1 := guest / q.geo.l2Entries
	t := q.l2[l1]
	if t == nil {
		t = make([]uint64, q.geo.l2Entries)
		q.l2[l1] = t
	}
	t[guest%q.geo.l2Entries] = entry
}

// writeMetadata places and writes the L2 tables, the L1 table, the
// refcount blocks and table after the data, then the header.
func (q *qcow2Builder) writeMetadata() error {
	cs := q.geo.size
	clusters := alignUp(q.next, cs) / cs

	l1Indexes := make([]int64, 0, len(q.l2))
	for i := range q.l2 {
		l1Indexes = append(l1Indexes, i)
	}
	slices.Sort(l1Indexes)
	l2Start := clusters
	clusters += int64(len(l1Indexes))

	guestClusters := (q.layout.size + cs - 1) / cs
	q.l1Size = (guestClusters + q.geo.l2Entries - 1) / q.geo.l2Entries
	l1Start := clusters
	l1Clusters := max(1, (q.l1Size*8+cs-1)/cs)
	clusters += l1Clusters

	// The refcount blocks and table count themselves.
	rbStart := clusters
	var refblocks, rtClusters int64
	for {
		total := rbStart + refblocks + rtClusters
		nb := (total + q.geo.refblockEntries - 1) / q.geo.refblockEntries
		nt := max(1, (nb*8+cs-1)/cs)
		if nb == refblocks && nt == rtClusters {
			break
		}
		refblocks, rtClusters = nb, nt
	}
	rtStart := rbStart + refblocks
	total := rtStart + rtClusters
	if int64(len(q.refs)) > l2Start {
		return fmt.Errorf("qcow2: data reaches cluster %d, past the metadata at %d", len(q.refs), l2Start)
	}
	for int64(len(q.refs)) < total {
		q.refs = append(q.refs, 0)
	}
	for c := l2Start; c < total; c++ {
		q.refs[c] = 1 // L2 tables, L1, refcount blocks and table
	}

	meta := make([]byte, (total-l2Start)*cs)
	put := func(cluster int64, index int64, v uint64) {
		binary.BigEndian.PutUint64(meta[(cluster-l2Start)*cs+index*8:], v)
	}
	l1 := make(map[int64]uint64, len(l1Indexes))
	for k, i := range l1Indexes {
		c := l2Start + int64(k)
		for e, v := range q.l2[i] {
			if v != 0 {
				put(c, int64(e), v)
			}
		}
		l1[i] = uint64(c*cs) | qcow2Copied
	}
	for i, v := range l1 {
		put(l1Start, i, v) // L1 entries run on across its clusters
	}
	for c := int64(0); c < total; c++ {
		rb := rbStart + c/q.geo.refblockEntries
		binary.BigEndian.PutUint16(meta[(rb-l2Start)*cs+c%q.geo.refblockEntries*2:], q.refs[c])
	}
	for b := int64(0); b < refblocks; b++ {
		put(rtStart, b, uint64((rbStart+b)*cs))
	}
	if _, err := q.file.WriteAt(meta, l2Start*cs); err != nil {
		return err
	}

	q.l1Offset = l1Start * cs
	q.rtOffset = rtStart * cs
	q.rtClusters = rtClusters
	q.fileSize = total * cs
	_, err := q.file.WriteAt(q.header(), 0)
	return err
}

// header returns the image header, followed by the end of the (empty)
// header extension area.
func (q *qcow2Builder) header() []byte {
	h := make([]byte, qcow2HeaderLength+8)
	be := binary.BigEndian
	be.PutUint32(h[0:], qcow2Magic)
	be.PutUint32(h[4:], qcow2Version)
	// 8-19: no backing file.
	be.PutUint32(h[20:], uint32(q.geo.bits))
	be.PutUint64(h[24:], uint64(q.layout.size))
	// 32: no encryption.
	be.PutUint32(h[36:], uint32(q.l1Size))
	be.PutUint64(h[40:], uint64(q.l1Offset))
	be.PutUint64(h[48:], uint64(q.rtOffset))
	be.PutUint32(h[56:], uint32(q.rtClusters))
	// 60-71: no snapshots.
	if q.opts.zstd {
		be.PutUint64(h[72:], qcow2IncompatCompressionType)
	}
	// 80-95: no compatible or autoclear features.
	be.PutUint32(h[96:], qcow2RefcountOrder)
	be.PutUint32(h[100:], qcow2HeaderLength)
	if q.opts.zstd {
		h[104] = qcow2CompressionTypeZstd
	}
	return h
}

func alignUp(n, to int64) int64 { return (n + to - 1) / to * to }

// hashFileRange returns the hex SHA-256 of the first size bytes of f,
// reading ahead on one goroutine while hashing on another.
func hashFileRange(ctx context.Context, f *os.File, size int64) (string, int64, error) {
	const chunk = 4 << 20
	type block struct {
		b   []byte
		err error
	}
	full := make(chan block, 2)
	free := make(chan []byte, 3)
	for range 3 {
		free <- make([]byte, chunk)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for off := int64(0); off < size; {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n := int(min(chunk, size-off))
			_, err := f.ReadAt(b[:n], off)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			select {
			case full <- block{b[:n], err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
			off += int64(n)
		}
	}()
	h := sha256.New()
	var done int64
	for blk := range full {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		if blk.err != nil {
			return "", 0, fmt.Errorf("reading %s back: %w", f.Name(), blk.err)
		}
		h.Write(blk.b)
		done += int64(len(blk.b))
		free <- blk.b[:cap(blk.b)]
	}
	if done != size {
		return "", 0, fmt.Errorf("reading %s back: got %d of %d bytes", f.Name(), done, size)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// qcow2ZstdLevel is the zstd level of compressed clusters: on 64 KiB
// clusters of text within 1% of the size libzstd's level 3 (QEMU's)
// gives, at about twice the speed of the next level.
const qcow2ZstdLevel = zstd.SpeedDefault

// writeQcow2Go writes a qcow2 output from Go when the input's guest bytes
// can be read from its file (raw, or qcow2 without compressed clusters,
// backing file or external data file) and the clusters are zstd-compressed
// or not compressed. It reports false, having written nothing, when the
// output is left to qemu-img: zlib clusters (QEMU inflates them with a
// 4 KiB window, which Go's deflate writers exceed) and inputs read through
// qemu-img.
func (w *writer) writeQcow2Go() (bool, error) {
	if w.cfg.Qcow2Compression == qcow2Zlib {
		return false, nil
	}
	layout, ok, err := readLayout(w.ctx, w.src, w.info)
	if err != nil || !ok {
		return false, err
	}
	defer func() { _ = layout.Close() }()
	workers := runtime.GOMAXPROCS(0)
	w.ui.Say(fmt.Sprintf("Writing qcow2 (%s compression, %d cores) from the %s of data in %s (%s virtual)...",
		w.cfg.Qcow2Compression, workers, progress.Bytes(layout.dataBytes()), filepath.Base(w.src), progress.Bytes(layout.size)))

	// Not O_TRUNC: tempPath made the file empty, and truncating a file to
	// zero makes ext4 (auto_da_alloc) start writing all of it back on
	// close: 0.46 s of a 4 s bench-compress qcow2 run (1.2 GiB written).
	f, err := os.OpenFile(w.partial, os.O_RDWR, 0)
	if err != nil {
		return true, err
	}
	defer f.Close()
	var total int64
	tmp := &qcow2Builder{layout: layout}
	if tmp.geo, err = newQcow2Geometry(qcow2DefaultClusterBits); err != nil {
		return true, err
	}
	for _, r := range tmp.clusterRuns() {
		total += min(r[1]<<tmp.geo.bits, layout.size) - r[0]<<tmp.geo.bits
	}
	add, done := w.progress(filepath.Base(w.src), total)
	defer done()
	sum, _, err := writeQcow2(w.ctx, layout, f, qcow2Options{
		clusterBits: qcow2DefaultClusterBits,
		zstd:        w.cfg.Qcow2Compression == qcow2Zstd,
		level:       qcow2ZstdLevel,
		workers:     workers,
		progress:    add,
		hashing:     func() { done(); w.ui.Say(fmt.Sprintf("Computing SHA-256 of %s...", filepath.Base(w.out))) },
	})
	if err != nil {
		if ctxErr := w.ctx.Err(); ctxErr != nil {
			return true, ctxErr
		}
		return true, fmt.Errorf("writing qcow2: %w", err)
	}
	w.sha256 = sum
	return true, f.Close()
}
