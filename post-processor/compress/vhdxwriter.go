package compress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

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
