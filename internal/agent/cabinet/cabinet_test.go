package cabinet

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestStoredRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // spans several data blocks
	members := []Member{
		{Name: "update.mum", Data: []byte("<assembly/>")},
		{Name: "big.bin", Data: big},
		{Name: "empty.txt", Data: nil},
		{Name: `sub\Windows10.0-KB1-x64-pkgProperties.txt`, Data: []byte("KB Article Number=\"1\"\r\n")},
	}
	var buf bytes.Buffer
	if err := Write(&buf, members); err != nil {
		t.Fatal(err)
	}
	c, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != len(members) {
		t.Fatalf("%d files, want %d", len(c.Files), len(members))
	}
	for i, m := range members {
		f := c.Files[i]
		got, err := f.ReadAll()
		if err != nil || f.Name != m.Name || !bytes.Equal(got, m.Data) {
			t.Errorf("member %d: name %q, %d bytes, err %v; want %q, %d bytes", i, f.Name, len(got), err, m.Name, len(m.Data))
		}
	}
	if f := c.Lookup("*-PKGPROPERTIES.TXT"); f == nil || !strings.HasSuffix(f.Name, "pkgProperties.txt") {
		t.Errorf("Lookup by suffix: %v", f)
	}
	if f := c.Lookup("UPDATE.MUM"); f == nil || f.Name != "update.mum" {
		t.Errorf("Lookup by name: %v", f)
	}
	if c.Lookup("missing") != nil {
		t.Error("Lookup found a missing member")
	}
}

func TestNotACabinet(t *testing.T) {
	b := []byte(strings.Repeat("x", 64))
	if _, err := NewReader(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "MSCF") {
		t.Errorf("err %v", err)
	}
}

// An MSZIP cabinet as makecab writes it: each 32 KiB block a deflate
// stream behind "CK", using the previous block as its dictionary.
func TestMSZIP(t *testing.T) {
	payload := bytes.Repeat([]byte("servicing stack update "), 3000) // ~69 KB, 3 blocks
	var blocks [][]byte
	var dict []byte
	for o := 0; o < len(payload); o += maxDataBlock {
		chunk := payload[o:min(o+maxDataBlock, len(payload))]
		var z bytes.Buffer
		z.WriteString("CK")
		fw, _ := flate.NewWriterDict(&z, flate.BestCompression, dict)
		_, _ = fw.Write(chunk)
		fw.Close()
		blocks = append(blocks, append([]byte{}, z.Bytes()...))
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], byte(len(chunk)), byte(len(chunk)>>8)) // uncompressed size trailer, stripped below
		dict = chunk
	}
	le := binary.LittleEndian
	name := "payload.txt"
	coffFiles := headerSize + 8
	dataOff := coffFiles + 16 + len(name) + 1
	var b bytes.Buffer
	h := make([]byte, headerSize)
	copy(h, signature)
	le.PutUint32(h[16:], uint32(coffFiles))
	h[24], h[25] = 3, 1
	le.PutUint16(h[26:], 1)
	le.PutUint16(h[28:], 1)
	b.Write(h)
	f := make([]byte, 8)
	le.PutUint32(f[0:], uint32(dataOff))
	le.PutUint16(f[4:], uint16(len(blocks)))
	le.PutUint16(f[6:], compressMSZIP)
	b.Write(f)
	e := make([]byte, 16)
	le.PutUint32(e[0:], uint32(len(payload)))
	b.Write(e)
	b.WriteString(name)
	b.WriteByte(0)
	for _, blk := range blocks {
		data, ucb := blk[:len(blk)-2], int(blk[len(blk)-2])|int(blk[len(blk)-1])<<8
		d := make([]byte, 8)
		le.PutUint16(d[4:], uint16(len(data)))
		le.PutUint16(d[6:], uint16(ucb))
		b.Write(d)
		b.Write(data)
	}
	c, err := NewReader(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Files[0].ReadAll()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("MSZIP member: %d bytes, err %v; want %d bytes", len(got), err, len(payload))
	}
	// LZX is listed but not opened.
	raw := b.Bytes()
	le.PutUint16(raw[headerSize+6:], 3)
	c, err = NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Files[0].ReadAll(); !errors.Is(err, ErrCompression) {
		t.Errorf("LZX member: err %v", err)
	}
}
