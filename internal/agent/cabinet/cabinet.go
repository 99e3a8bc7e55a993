// Package cabinet reads and writes Microsoft Cabinet files (MS-CAB), the
// container of Windows update packages: an .msu is a cabinet holding the
// package .cab files and a *-pkgProperties.txt, a package .cab holds an
// update.mum manifest. Reading supports stored and MSZIP folders (enough
// for the metadata files, which Microsoft stores uncompressed or MSZIP);
// members of LZX or Quantum folders are listed but cannot be opened.
// Writing produces stored (uncompressed) single-folder cabinets, which
// expand.exe and DISM accept.
package cabinet

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	signature      = "MSCF"
	headerSize     = 36
	flagPrev       = 0x0001
	flagNext       = 0x0002
	flagReserve    = 0x0004
	compressNone   = 0
	compressMSZIP  = 1
	compressMask   = 0x000F
	maxDataBlock   = 32768
	maxMemberBytes = 64 << 20 // Open refuses bigger members: metadata only
)

// ErrCompression is returned by Open for a member of an LZX or Quantum folder.
var ErrCompression = errors.New("cabinet: compression method not supported (only stored and MSZIP)")

// File is one member of a cabinet.
type File struct {
	Name string
	Size uint32

	cab    *Reader
	folder int
	offset uint32 // uncompressed offset in the folder
}

type folder struct {
	dataOffset uint32
	blocks     uint16
	compress   uint16
}

// Reader is an opened cabinet.
type Reader struct {
	Files []*File

	r           io.ReaderAt
	folders     []folder
	dataReserve int
}

// NewReader parses the cabinet's header, folders and file list.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	var h [headerSize]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("cabinet: reading the header: %w", err)
	}
	if string(h[0:4]) != signature {
		return nil, errors.New("cabinet: not a cabinet (no MSCF signature)")
	}
	le := binary.LittleEndian
	coffFiles := le.Uint32(h[16:])
	nFolders := int(le.Uint16(h[26:]))
	nFiles := int(le.Uint16(h[28:]))
	flags := le.Uint16(h[30:])
	if flags&(flagPrev|flagNext) != 0 {
		return nil, errors.New("cabinet: multi-volume cabinets are not supported")
	}
	off := int64(headerSize)
	folderReserve, dataReserve := 0, 0
	if flags&flagReserve != 0 {
		var rs [4]byte
		if _, err := r.ReadAt(rs[:], off); err != nil {
			return nil, fmt.Errorf("cabinet: reading the reserve sizes: %w", err)
		}
		off += 4 + int64(le.Uint16(rs[0:]))
		folderReserve, dataReserve = int(rs[2]), int(rs[3])
	}
	c := &Reader{r: r, dataReserve: dataReserve}
	for i := 0; i < nFolders; i++ {
		var f [8]byte
		if _, err := r.ReadAt(f[:], off); err != nil {
			return nil, fmt.Errorf("cabinet: reading folder %d: %w", i, err)
		}
		c.folders = append(c.folders, folder{dataOffset: le.Uint32(f[0:]), blocks: le.Uint16(f[4:]), compress: le.Uint16(f[6:])})
		off += 8 + int64(folderReserve)
	}
	off = int64(coffFiles)
	for i := 0; i < nFiles; i++ {
		var f [16]byte
		if _, err := r.ReadAt(f[:], off); err != nil {
			return nil, fmt.Errorf("cabinet: reading file entry %d: %w", i, err)
		}
		off += 16
		name, n, err := readCString(r, off, size)
		if err != nil {
			return nil, fmt.Errorf("cabinet: file entry %d: %w", i, err)
		}
		off += int64(n)
		fi := int(le.Uint16(f[8:]))
		if fi >= nFolders {
			// 0xFFFD..0xFFFF continue from or into other cabinets.
			return nil, fmt.Errorf("cabinet: %s is continued across cabinets, which is not supported", name)
		}
		c.Files = append(c.Files, &File{Name: name, Size: le.Uint32(f[0:]), cab: c, folder: fi, offset: le.Uint32(f[4:])})
	}
	return c, nil
}

func readCString(r io.ReaderAt, off, size int64) (string, int, error) {
	var b []byte
	buf := make([]byte, 64)
	for len(b) < 1024 {
		n, err := r.ReadAt(buf, off+int64(len(b)))
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			b = append(b, buf[:i]...)
			return string(b), len(b) + 1, nil
		}
		b = append(b, buf[:n]...)
		if err != nil {
			return "", 0, fmt.Errorf("unterminated name: %w", err)
		}
	}
	return "", 0, errors.New("name longer than 1024 bytes")
}

// Lookup returns the member whose name (without any directory) equals
// name case-insensitively, or whose name ends with suffix when name starts
// with "*"; nil when none.
func (c *Reader) Lookup(name string) *File {
	for _, f := range c.Files {
		base := f.Name[strings.LastIndexAny(f.Name, `\/`)+1:]
		if strings.HasPrefix(name, "*") {
			if strings.HasSuffix(strings.ToLower(base), strings.ToLower(name[1:])) {
				return f
			}
		} else if strings.EqualFold(base, name) {
			return f
		}
	}
	return nil
}

// ReadAll returns the member's content (at most 64 MiB).
func (f *File) ReadAll() ([]byte, error) {
	if f.Size > maxMemberBytes {
		return nil, fmt.Errorf("cabinet: %s has %d bytes, more than this reader unpacks", f.Name, f.Size)
	}
	fo := f.cab.folders[f.folder]
	method := fo.compress & compressMask
	if method != compressNone && method != compressMSZIP {
		return nil, fmt.Errorf("%s: %w", f.Name, ErrCompression)
	}
	le := binary.LittleEndian
	var out, dict []byte
	off := int64(fo.dataOffset)
	end := f.offset + f.Size
	for i := 0; i < int(fo.blocks) && uint32(len(out)) < end; i++ {
		var h [8]byte
		if _, err := f.cab.r.ReadAt(h[:], off); err != nil {
			return nil, fmt.Errorf("cabinet: data block %d of %s: %w", i, f.Name, err)
		}
		cb, ucb := int(le.Uint16(h[4:])), int(le.Uint16(h[6:]))
		off += 8 + int64(f.cab.dataReserve)
		data := make([]byte, cb)
		if _, err := f.cab.r.ReadAt(data, off); err != nil {
			return nil, fmt.Errorf("cabinet: data block %d of %s: %w", i, f.Name, err)
		}
		off += int64(cb)
		if method == compressNone {
			out = append(out, data...)
			continue
		}
		if len(data) < 2 || data[0] != 'C' || data[1] != 'K' {
			return nil, fmt.Errorf("cabinet: MSZIP block %d of %s has no CK signature", i, f.Name)
		}
		zr := flate.NewReaderDict(bytes.NewReader(data[2:]), dict)
		block := make([]byte, ucb)
		if _, err := io.ReadFull(zr, block); err != nil {
			return nil, fmt.Errorf("cabinet: inflating block %d of %s: %w", i, f.Name, err)
		}
		out = append(out, block...)
		dict = block
	}
	if uint32(len(out)) < end {
		return nil, fmt.Errorf("cabinet: %s is truncated", f.Name)
	}
	return out[f.offset:end], nil
}

// Member is a file to write into a cabinet.
type Member struct {
	Name string
	Data []byte
}

// Write writes a stored (uncompressed) cabinet with one folder holding the
// members in order.
func Write(w io.Writer, members []Member) error {
	if len(members) > 0xFFFF {
		return errors.New("cabinet: too many members")
	}
	le := binary.LittleEndian
	var names int
	var total int
	for _, m := range members {
		names += 16 + len(m.Name) + 1
		total += len(m.Data)
	}
	var payload []byte
	for _, m := range members {
		payload = append(payload, m.Data...)
	}
	nBlocks := (len(payload) + maxDataBlock - 1) / maxDataBlock
	if nBlocks > 0xFFFF {
		return errors.New("cabinet: too much data for one folder")
	}
	coffFiles := headerSize + 8
	dataOff := coffFiles + names
	size := dataOff + nBlocks*8 + len(payload)

	var b bytes.Buffer
	h := make([]byte, headerSize)
	copy(h, signature)
	le.PutUint32(h[8:], uint32(size))
	le.PutUint32(h[16:], uint32(coffFiles))
	h[24], h[25] = 3, 1
	le.PutUint16(h[26:], 1)
	le.PutUint16(h[28:], uint16(len(members)))
	b.Write(h)
	f := make([]byte, 8)
	le.PutUint32(f[0:], uint32(dataOff))
	le.PutUint16(f[4:], uint16(nBlocks))
	b.Write(f)
	var uoff uint32
	for _, m := range members {
		e := make([]byte, 16)
		le.PutUint32(e[0:], uint32(len(m.Data)))
		le.PutUint32(e[4:], uoff)
		le.PutUint16(e[10:], 0x5821) // 2024-01-01
		le.PutUint16(e[14:], 0x20)   // archive
		b.Write(e)
		b.WriteString(m.Name)
		b.WriteByte(0)
		uoff += uint32(len(m.Data))
	}
	for o := 0; o < len(payload); o += maxDataBlock {
		chunk := payload[o:min(o+maxDataBlock, len(payload))]
		d := make([]byte, 8)
		le.PutUint16(d[4:], uint16(len(chunk)))
		le.PutUint16(d[6:], uint16(len(chunk)))
		b.Write(d)
		b.Write(chunk)
	}
	_, err := w.Write(b.Bytes())
	return err
}
