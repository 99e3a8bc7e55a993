package compress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// mapEntry is one element of `qemu-img map --output=json`.
type mapEntry struct {
	Start   int64  `json:"start"`
	Length  int64  `json:"length"`
	Depth   int    `json:"depth"`
	Present bool   `json:"present"`
	Zero    bool   `json:"zero"`
	Data    bool   `json:"data"`
	Offset  *int64 `json:"offset"`
}

// dataExtent is a run of guest bytes stored uncompressed in the host file.
type dataExtent struct {
	start, length, host int64
}

func (e dataExtent) end() int64 { return e.start + e.length }

// diskLayout gives the guest bytes of a disk image read straight from the
// host file: data extents are read at their host offsets and everything
// else reads as zeros without touching the disk. This is what makes the
// stream formats cost the data of a disk, not its virtual size.
type diskLayout struct {
	size    int64
	file    *os.File
	extents []dataExtent // sorted by start, non-overlapping
}

// dataBytes is the number of guest bytes stored in data extents.
func (d *diskLayout) dataBytes() int64 {
	var n int64
	for _, e := range d.extents {
		n += e.length
	}
	return n
}

func (d *diskLayout) Close() error { return d.file.Close() }

// readAt fills p with the guest bytes at off. It reports whether p is all
// zeros, which it knows without scanning when no data extent overlaps.
func (d *diskLayout) readAt(p []byte, off int64) (zero bool, err error) {
	end := off + int64(len(p))
	i := sort.Search(len(d.extents), func(i int) bool { return d.extents[i].end() > off })
	pos := off
	touched := false
	for ; i < len(d.extents) && d.extents[i].start < end; i++ {
		e := d.extents[i]
		from := max(e.start, off)
		to := min(e.end(), end)
		clear(p[pos-off : from-off])
		if _, err := d.file.ReadAt(p[from-off:to-off], e.host+(from-e.start)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, fmt.Errorf("reading %s at %d: %w", d.file.Name(), e.host+(from-e.start), err)
		}
		pos = to
		touched = true
	}
	clear(p[pos-off:])
	if !touched {
		return true, nil
	}
	return isZero(p), nil
}

// hasData reports whether any data extent overlaps the n guest bytes at off.
func (d *diskLayout) hasData(off, n int64) bool {
	i := sort.Search(len(d.extents), func(i int) bool { return d.extents[i].end() > off })
	return i < len(d.extents) && d.extents[i].start < off+n
}

var zeroPage = make([]byte, 64<<10)

// isZero reports whether p holds only zero bytes.
func isZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeroPage))
		if !bytes.Equal(p[:n], zeroPage[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// readLayout maps the disk image at path with `qemu-img map`. It returns
// ok=false when the guest bytes cannot be read from the host file directly:
// formats other than raw and qcow2, compressed or encrypted clusters,
// backing files and external data files. The caller then converts the image
// to a sparse raw file first.
func readLayout(ctx context.Context, path string, info imageInfo) (*diskLayout, bool, error) {
	if info.Format != "raw" && info.Format != "qcow2" {
		return nil, false, nil
	}
	if info.BackingFilename != "" || info.Encrypted || info.FormatSpecific.Data.DataFile != "" {
		return nil, false, nil
	}
	var out bytes.Buffer
	err := command{
		name:   qemuImgCommand,
		args:   []string{"map", "--output=json", "-f", info.Format, path},
		stdout: &out,
	}.run(ctx)
	if err != nil {
		return nil, false, err
	}
	var entries []mapEntry
	if err := json.Unmarshal(out.Bytes(), &entries); err != nil {
		return nil, false, fmt.Errorf("reading qemu-img map output for %s: %w", path, err)
	}
	var extents []dataExtent
	var covered int64
	for _, e := range entries {
		if e.Start != covered || e.Length < 0 {
			return nil, false, fmt.Errorf("qemu-img map of %s: unexpected extent at %d (expected %d)", path, e.Start, covered)
		}
		covered += e.Length
		if e.Zero || !e.Data {
			if !e.Zero {
				// Neither data nor known zeros: only a backing file could
				// say what these bytes are.
				return nil, false, nil
			}
			continue
		}
		if e.Offset == nil || e.Depth != 0 {
			return nil, false, nil
		}
		if n := len(extents); n > 0 && extents[n-1].end() == e.Start && extents[n-1].host+extents[n-1].length == *e.Offset {
			extents[n-1].length += e.Length
			continue
		}
		extents = append(extents, dataExtent{start: e.Start, length: e.Length, host: *e.Offset})
	}
	if covered != info.VirtualSize {
		return nil, false, fmt.Errorf("qemu-img map of %s covers %d bytes, the image has %d", path, covered, info.VirtualSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	return &diskLayout{size: info.VirtualSize, file: f, extents: extents}, true, nil
}
