package compress

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// streamChunk is the unit the gzip writer compresses on one core. Every
// chunk ends with a deflate sync flush, so the compressed chunks concatenate
// into one deflate stream, and an all-zero chunk is always the same bytes.
const streamChunk = 1 << 20

// streamPiece is one chunk of the uncompressed stream: literal bytes (a tar
// header or trailer) or n guest bytes of the disk at off.
type streamPiece struct {
	literal []byte
	off     int64
	n       int
	disk    bool
}

type gzipJob struct {
	piece streamPiece
	zero  bool // a whole all-zero disk chunk: use the precomputed bytes
	crc   uint32
	out   bytes.Buffer
	err   error
	done  chan struct{}
}

// gzipStream writes one gzip member holding the pieces in order. Chunks are
// read and compressed on all cores; all-zero disk chunks (holes, zero
// clusters, zero-filled data) are neither compressed nor hashed but copied
// from one precomputed compressed zero chunk.
type gzipStream struct {
	level    int
	layout   *diskLayout
	progress func(n int64) // called with each disk chunk's size, in order
}

func (g *gzipStream) write(ctx context.Context, dst io.Writer, pieces []streamPiece) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	zeros := make([]byte, streamChunk)
	var zeroOut bytes.Buffer
	if err := deflateChunk(nil, &zeroOut, zeros, g.level); err != nil {
		return err
	}
	zeroCRC := crc32.ChecksumIEEE(zeros)
	chunkShift := crcShift(streamChunk)

	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *gzipJob)
	ordered := make(chan *gzipJob, 3*workers)
	bufs := sync.Pool{New: func() any { b := make([]byte, streamChunk); return &b }}

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fw *flate.Writer
			for j := range jobs {
				j.err = g.compress(j, &fw, &bufs)
				close(j.done)
			}
		}()
	}
	// Feed jobs in order; the writer below consumes them in the same order.
	go func() {
		defer close(ordered)
		defer close(jobs)
		for _, p := range pieces {
			j := &gzipJob{piece: p, done: make(chan struct{})}
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
	}()
	err := g.collect(ctx, dst, ordered, zeroOut.Bytes(), zeroCRC, chunkShift)
	cancel()
	for range ordered { // let the feeder finish
	}
	wg.Wait()
	return err
}

func (g *gzipStream) compress(j *gzipJob, fw **flate.Writer, bufs *sync.Pool) error {
	data := j.piece.literal
	if j.piece.disk && j.piece.n == streamChunk && !g.layout.hasData(j.piece.off, streamChunk) {
		j.zero = true // a hole: nothing to read, not even zeros to clear
		return nil
	}
	if j.piece.disk {
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		data = (*bp)[:j.piece.n]
		zero, err := g.layout.readAt(data, j.piece.off)
		if err != nil {
			return err
		}
		if zero && j.piece.n == streamChunk {
			j.zero = true
			return nil
		}
	}
	j.crc = crc32.ChecksumIEEE(data)
	return deflateChunk(fw, &j.out, data, g.level)
}

// deflateChunk compresses data into out as non-final deflate blocks ending
// in a sync flush, reusing *fw when it is not nil.
func deflateChunk(fw **flate.Writer, out *bytes.Buffer, data []byte, level int) error {
	var w *flate.Writer
	if fw != nil && *fw != nil {
		w = *fw
		w.Reset(out)
	} else {
		var err error
		if w, err = flate.NewWriter(out, level); err != nil {
			return err
		}
		if fw != nil {
			*fw = w
		}
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Flush()
}

func (g *gzipStream) collect(ctx context.Context, dst io.Writer, ordered <-chan *gzipJob, zeroOut []byte, zeroCRC, chunkShift uint32) error {
	// RFC 1952 member header: deflate, no name, no mtime (the output is a
	// function of the disk bytes only), unknown OS.
	if _, err := dst.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}); err != nil {
		return err
	}
	var crc uint32
	var total int64
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
		n := len(j.piece.literal)
		if j.piece.disk {
			n = j.piece.n
		}
		var err error
		if j.zero {
			crc = crcCombine(crc, zeroCRC, chunkShift)
			_, err = dst.Write(zeroOut)
		} else {
			shift := chunkShift
			if n != streamChunk {
				shift = crcShift(int64(n))
			}
			crc = crcCombine(crc, j.crc, shift)
			_, err = dst.Write(j.out.Bytes())
		}
		if err != nil {
			return err
		}
		total += int64(n)
		if j.piece.disk && g.progress != nil {
			g.progress(int64(n))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The final (empty) block, then the trailer.
	var final bytes.Buffer
	w, err := flate.NewWriter(&final, g.level)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	trailer := binary.LittleEndian.AppendUint32(nil, crc)
	trailer = binary.LittleEndian.AppendUint32(trailer, uint32(total))
	if _, err := dst.Write(append(final.Bytes(), trailer...)); err != nil {
		return err
	}
	return nil
}

// diskPieces splits the guest bytes [0, size) into stream chunks.
func diskPieces(size int64) []streamPiece {
	pieces := make([]streamPiece, 0, size/streamChunk+1)
	for off := int64(0); off < size; off += streamChunk {
		pieces = append(pieces, streamPiece{disk: true, off: off, n: int(min(streamChunk, size-off))})
	}
	return pieces
}
