package compress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// qcow2Disk describes a raw test disk: its virtual size and what is written
// where.
type qcow2Disk struct {
	size   int64
	writes func(at func(off int64, b []byte))
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var qcow2Disks = map[string]qcow2Disk{
	// Incompressible data, not cluster aligned, and the last byte.
	"random": {size: 16<<20 + 512, writes: func(at func(int64, []byte)) {
		at(0, randomBytes(1, 5<<20+777))
		at(16<<20+511, []byte{0xff})
	}},
	// Allocated zeros only: no data cluster at all.
	"zero": {size: 8 << 20, writes: func(at func(int64, []byte)) {
		at(0, make([]byte, 8<<20))
	}},
	// Holes, text, zeros, random runs and a partial last cluster.
	"sparse": {size: 40<<20 + 4096 + 512, writes: func(at func(int64, []byte)) {
		at(3<<20+12345, randomBytes(2, 1<<20))
		at(6<<20, bytes.Repeat([]byte("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion winbake\r\n"), 40000))
		at(9<<20, make([]byte, 3<<20))
		at(12<<20+7, randomBytes(3, 100))
		at(40<<20+4000, randomBytes(4, 600))
	}},
	// The same blocks many times over: clusters shared, some compressed
	// (text) and some not (random).
	"duplicates": {size: 32 << 20, writes: func(at func(int64, []byte)) {
		text := bytes.Repeat([]byte("C:\\Windows\\WinSxS\\amd64_microsoft-windows duplicate\r\n"), 1300)[:64<<10]
		random := randomBytes(5, 64<<10)
		for off := int64(0); off < 32<<20; off += 128 << 10 {
			at(off, text)
			at(off+64<<10, random)
		}
		at(1<<20+3, []byte("a different cluster"))
	}},
	// A large, mostly empty disk: data at the start, across an L2 table
	// boundary and at the end.
	"large": {size: 64 << 30, writes: func(at func(int64, []byte)) {
		at(0, randomBytes(6, 200<<10))
		at(2<<30-64<<10, randomBytes(7, 256<<10))
		at(64<<30-100, randomBytes(8, 100))
	}},
}

func writeQcow2Disk(t *testing.T, path string, d qcow2Disk) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d.writes(func(off int64, b []byte) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	})
	if err := f.Truncate(d.size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func rawLayout(t *testing.T, path string) *diskLayout {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	l, ok, err := readLayout(context.Background(), path, imageInfo{Format: "raw", VirtualSize: fi.Size()})
	if err != nil || !ok {
		t.Fatalf("readLayout(%s) = %v, %v", path, ok, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// checkQcow2 runs `qemu-img check`, which exits non-zero on errors and on
// leaked clusters, and `qemu-img compare` against the raw source.
func checkQcow2(t *testing.T, src, out string) {
	t.Helper()
	check := qemuImg(t, "check", "-f", "qcow2", out)
	if !strings.Contains(check, "No errors were found on the image.") {
		t.Errorf("qemu-img check %s:\n%s", out, check)
	}
	qemuImg(t, "compare", "-f", "raw", "-F", "qcow2", src, out)
}

// TestQcow2WriterRoundTrip writes each test disk with zstd and with
// standard clusters only, at QEMU's default cluster size and at 4 KiB
// (where the disks span several L2 tables, refcount blocks and L1
// clusters), and checks QEMU reads back the same bytes from an image
// without errors or leaks, the reported SHA-256 and size are the file's,
// and the same input gives the same bytes.
func TestQcow2WriterRoundTrip(t *testing.T) {
	requireTools(t, "qemu-img")
	for name, d := range qcow2Disks {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src.raw")
			writeQcow2Disk(t, src, d)
			layout := rawLayout(t, src)
			for _, bits := range []int{16, 12} {
				for _, compressed := range []bool{true, false} {
					if bits == 12 && name == "large" {
						continue // 16 Mi guest clusters of 4 KiB: slow, and covered by the others
					}
					out := filepath.Join(dir, "out.qcow2")
					f, err := os.Create(out)
					if err != nil {
						t.Fatal(err)
					}
					opts := qcow2Options{clusterBits: bits, zstd: compressed, level: qcow2ZstdLevel, workers: 3}
					sum, size, err := writeQcow2(context.Background(), layout, f, opts)
					f.Close()
					if err != nil {
						t.Fatalf("bits %d zstd %v: %v", bits, compressed, err)
					}
					checkQcow2(t, src, out)
					requireGlanceAccepts(t, out, "qcow2", d.size)
					if got := fileSHA256(t, out); got != sum {
						t.Errorf("bits %d zstd %v: reported sha256 %s, file hashes to %s", bits, compressed, sum, got)
					}
					fi, _ := os.Stat(out)
					if fi.Size() != size {
						t.Errorf("bits %d zstd %v: reported size %d, file has %d bytes", bits, compressed, size, fi.Size())
					}
					info := qcow2Info(t, out)
					wantType := "zlib" // the header without compression_type
					if compressed {
						wantType = "zstd"
					}
					if info.ClusterSize != 1<<bits || info.CompressionType != wantType || info.VirtualSize != d.size {
						t.Errorf("bits %d zstd %v: qemu-img info says cluster size %d, compression %s, virtual size %d",
							bits, compressed, info.ClusterSize, info.CompressionType, info.VirtualSize)
					}
					// The same input again: the same bytes.
					f, _ = os.Create(out + ".again")
					again, _, err := writeQcow2(context.Background(), layout, f, opts)
					f.Close()
					if err != nil || again != sum {
						t.Errorf("bits %d zstd %v: a second run gave %s (%v), the first %s", bits, compressed, again, err, sum)
					}
					for _, f := range []string{out, out + ".again"} {
						if err := os.Remove(f); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		})
	}
}

type qcow2InfoT struct {
	VirtualSize     int64
	ClusterSize     int64
	CompressionType string
}

func qcow2Info(t *testing.T, path string) qcow2InfoT {
	t.Helper()
	var info struct {
		VirtualSize    int64 `json:"virtual-size"`
		ClusterSize    int64 `json:"cluster-size"`
		FormatSpecific struct {
			Data struct {
				CompressionType string `json:"compression-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", "-f", "qcow2", path)), &info); err != nil {
		t.Fatal(err)
	}
	return qcow2InfoT{info.VirtualSize, info.ClusterSize, info.FormatSpecific.Data.CompressionType}
}

// TestQcow2WriterShares checks that clusters with the same content are
// stored once and shared (QEMU maps them to the same host offset) and that
// the image is smaller than one storing every copy.
func TestQcow2WriterShares(t *testing.T) {
	requireTools(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeQcow2Disk(t, src, qcow2Disks["duplicates"])
	out := filepath.Join(dir, "out.qcow2")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	_, size, err := writeQcow2(context.Background(), rawLayout(t, src), f, qcow2Options{clusterBits: 16, zstd: true, level: zstd.SpeedDefault, workers: 2})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkQcow2(t, src, out)
	// 512 guest clusters of two contents (and one cluster that differs):
	// header, data, one L2 table, L1, refcount block and table.
	if size > 8*65536 {
		t.Errorf("image of 32 MiB of two repeated clusters is %d bytes", size)
	}
	// The random cluster is stored as a standard cluster: qemu-img map
	// shows its copies at one host offset.
	var m []struct {
		Start  int64  `json:"start"`
		Length int64  `json:"length"`
		Data   bool   `json:"data"`
		Offset *int64 `json:"offset"`
	}
	if err := json.Unmarshal([]byte(qemuImg(t, "map", "--output=json", "-f", "qcow2", out)), &m); err != nil {
		t.Fatal(err)
	}
	offsets := map[int64]bool{}
	for _, e := range m {
		if e.Offset != nil && e.Data {
			offsets[*e.Offset] = true
		}
	}
	if len(offsets) != 1 {
		t.Errorf("the standard clusters of the repeated random block map to %d host offsets, want 1: %v", len(offsets), offsets)
	}
}

// TestQcow2WriterRefusesShortInput: a qcow2 input whose data clusters lie
// past the end of its file (a truncated copy) fails with an error naming
// the read, and the post-processor leaves nothing behind.
func TestQcow2WriterRefusesShortInput(t *testing.T) {
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
	p := configure(t, map[string]interface{}{"format": "qcow2", "output": filepath.Join(outDir, "out.qcow2")})
	ui := newTestUI()
	_, _, err = postProcess(context.Background(), p, ui, in)
	if err == nil {
		t.Fatalf("PostProcess of a truncated qcow2 succeeded; ui:\n%s", ui.messages())
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "reading") && !strings.Contains(err.Error(), "qemu-img") {
		t.Errorf("error %q does not say what failed", err)
	}
	if names := dirNames(t, outDir); len(names) != 0 {
		t.Errorf("after the failure the output directory holds %v", names)
	}
}

// TestQcow2WriterFallsBack: inputs whose guest bytes only qemu-img can read
// (compressed clusters) and zlib clusters, which Go's deflate writers
// cannot produce for QEMU's 4 KiB inflate window, go through qemu-img; the
// other qcow2 outputs are written from Go.
func TestQcow2WriterFallsBack(t *testing.T) {
	requireTools(t, "qemu-img")
	cases := []struct {
		input, compression string
		goWriter           bool
	}{
		{"raw", "zstd", true},
		{"qcow2", "zstd", true},
		{"raw", "none", true},
		{"qcow2-zlib", "zstd", false},
		{"raw", "zlib", false},
	}
	for _, tc := range cases {
		t.Run(tc.input+"_"+tc.compression, func(t *testing.T) {
			t.Parallel()
			in := newInput(t, tc.input)
			out := filepath.Join(t.TempDir(), "out.qcow2")
			p := configure(t, map[string]interface{}{"format": "qcow2", "qcow2_compression": tc.compression, "output": out})
			ui := newTestUI()
			if _, _, err := postProcess(context.Background(), p, ui, in); err != nil {
				t.Fatalf("PostProcess: %v", err)
			}
			msgs := ui.messages()
			if got := strings.Contains(msgs, "Writing qcow2 ("); got != tc.goWriter {
				t.Errorf("written from Go: %v, want %v; ui:\n%s", got, tc.goWriter, msgs)
			}
			if got := strings.Contains(msgs, "with qemu-img"); got == tc.goWriter {
				t.Errorf("converted by qemu-img: %v, want %v; ui:\n%s", got, !tc.goWriter, msgs)
			}
			checkRoundTrip(t, "qcow2", out)
		})
	}
}

// TestQcow2WriterCancel cancels the Go writer while it compresses and while
// it hashes: the error is the context's and the output directory is empty.
func TestQcow2WriterCancel(t *testing.T) {
	checkWriterCancel(t, "qcow2", "read", "Computing SHA-256")
}

// TestQcow2GeometryRefusesClusterBits: cluster sizes QEMU cannot open are
// refused before anything is written.
func TestQcow2GeometryRefusesClusterBits(t *testing.T) {
	for _, bits := range []int{8, 22} {
		if _, err := newQcow2Geometry(bits); err == nil || !strings.Contains(err.Error(), "9 to 21") {
			t.Errorf("cluster_bits %d: error %v, want one naming 9 to 21", bits, err)
		}
	}
	g, err := newQcow2Geometry(16)
	if err != nil {
		t.Fatal(err)
	}
	// qcow2.txt: x = 62 - (cluster_bits - 8) = 54; the sector count takes
	// bits 54-61.
	if g.csizeShift != 54 || g.csizeMask != 0xff || g.offsetMask != 1<<54-1 {
		t.Errorf("64 KiB geometry: shift %d mask %#x offset mask %#x", g.csizeShift, g.csizeMask, g.offsetMask)
	}
}

// checkWriterCancel writes the sparse test disk as format and cancels the
// context at each point of whens ("read": the first read of the input;
// else the start of the ui message on which to cancel): the error is the
// context's and the output directory is empty.
func checkWriterCancel(t *testing.T, format string, whens ...string) {
	t.Helper()
	requireTools(t, "qemu-img")
	for _, when := range whens {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			in := filepath.Join(t.TempDir(), "disk.raw")
			writeQcow2Disk(t, in, qcow2Disks["sparse"])
			outDir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ui := newTestUI()
			var once sync.Once
			if when == "read" {
				ui.onRead = func() { once.Do(cancel) }
			} else {
				ui.onSay = func(msg string) {
					if strings.HasPrefix(msg, when) {
						once.Do(cancel)
					}
				}
			}
			p := configure(t, map[string]interface{}{"format": format, "output": filepath.Join(outDir, "out."+format)})
			a, _, err := postProcess(ctx, p, ui, in)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("PostProcess = %v, %v; want context.Canceled\nui:\n%s", a, err, ui.messages())
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("after cancel the output directory holds %v", names)
			}
		})
	}
}
