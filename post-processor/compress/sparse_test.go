package compress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// sparseDiskSize is not a multiple of the stream chunk, and its holes span
// several xz zero units.
const sparseDiskSize = 200<<20 + 4096 + 512

// writeSparseDisk writes a raw disk with holes, allocated zero-filled
// regions, data that is not chunk aligned and data in the last sector.
func writeSparseDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	at := func(off int64, b []byte) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	at(0, append([]byte("WINBAKE SPARSE TEST"), random(493)...))
	at(3<<20+12345, random(1<<20))
	at(6<<20, bytes.Repeat([]byte("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion winbake\r\n"), 40000))
	// Allocated zeros: written, not holes.
	at(9<<20, make([]byte, 3<<20))
	at(12<<20+7, random(100))
	// A hole from ~12 MiB to ~190 MiB, then repeated blocks.
	block := random(64 << 10)
	for off := int64(190 << 20); off < 194<<20; off += int64(len(block)) {
		at(off, block)
	}
	at(sparseDiskSize-512, random(512))
	if err := f.Truncate(sparseDiskSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// newSparseInput makes the sparse disk in a fresh directory in the given
// input format: raw, qcow2, qcow2-zero (qcow2 with zero-flagged clusters
// over what was data), or qcow2-zlib (compressed clusters).
func newSparseInput(t *testing.T, format string) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	writeSparseDisk(t, raw)
	if format == "raw" {
		return raw
	}
	q := filepath.Join(dir, "disk.qcow2")
	args := []string{"convert", "-f", "raw", "-O", "qcow2"}
	if format == "qcow2-zlib" {
		args = append(args, "-c", "-o", "compression_type=zlib")
	}
	qemuImg(t, append(args, raw, q)...)
	if format == "qcow2-zero" {
		out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -z 3M 512k", "-c", "write -z 190M 1M", q).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-io: %v\n%s", err, out)
		}
		if !strings.Contains(qemuImg(t, "map", "--output=json", q), `"zero": true, "data": true`) &&
			!strings.Contains(qemuImg(t, "map", "--output=json", q), `"present": true, "zero": true`) {
			t.Fatalf("qemu-io made no zero clusters:\n%s", qemuImg(t, "map", "--output=json", q))
		}
	}
	if err := os.Remove(raw); err != nil {
		t.Fatal(err)
	}
	return q
}

// readerSHA256 hashes r, also reporting the byte count.
func readerSHA256(t *testing.T, r io.Reader) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// commandSHA256 hashes the standard output of a command.
func commandSHA256(t *testing.T, name string, args ...string) (string, int64) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sum, n := readerSHA256(t, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return sum, n
}

// TestSparseRoundTrip writes sparse disks (holes, zero clusters, allocated
// zeros, data at the end) in every input format to every output format and
// checks the output decompresses, with the standard tools, to exactly the
// bytes of `qemu-img convert -O raw`.
func TestSparseRoundTrip(t *testing.T) {
	requireTools(t, "qemu-img", "qemu-io", "xz", "gzip", "tar")
	for _, inFmt := range []string{"raw", "qcow2", "qcow2-zero", "qcow2-zlib"} {
		t.Run(inFmt, func(t *testing.T) {
			if testing.Short() && inFmt != "qcow2" {
				// make quick: the input builders make; make test runs all four.
				t.Skip("-short: only the qcow2 input")
			}
			t.Parallel()
			in := newSparseInput(t, inFmt)
			ref := filepath.Join(t.TempDir(), "reference.raw")
			qemuImg(t, "convert", "-O", "raw", in, ref)
			rf, err := os.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			wantSum, _ := readerSHA256(t, rf)
			rf.Close()

			for _, spec := range formats {
				t.Run(spec.Name, func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "image."+spec.Name)
					p := configure(t, map[string]interface{}{"format": spec.Name, "output": out})
					ui := newTestUI()
					a, _, err := postProcess(context.Background(), p, ui, in)
					if err != nil {
						t.Fatalf("PostProcess: %v\nui:\n%s", err, ui.messages())
					}
					converted := strings.Contains(ui.messages(), "temporary raw image")
					if spec.QemuFormat == "" && converted != (inFmt == "qcow2-zlib") {
						t.Errorf("converted to a temporary raw image: %v; want that only for compressed clusters\nui:\n%s",
							converted, ui.messages())
					}
					if got := fileSHA256(t, out); got != a.SHA256 {
						t.Errorf("artifact sha256 %s, file hashes to %s", a.SHA256, got)
					}

					var gotSum string
					var n int64
					switch spec.Name {
					case "dd.gz":
						gotSum, n = commandSHA256(t, "gzip", "-dc", out)
					case "dd.tgz":
						gotSum, n = commandSHA256(t, "tar", "-xOzf", out, TarMemberName)
						if list, err := exec.Command("tar", "-tzf", out).Output(); err != nil || string(list) != TarMemberName+"\n" {
							t.Errorf("tar -tzf: %q, %v; want only %s", list, err, TarMemberName)
						}
					case "dd.xz":
						gotSum, n = commandSHA256(t, "xz", "-dc", out)
					default:
						if spec.Name != "raw" {
							qemuImg(t, "check", "-f", spec.QemuFormat, out)
						}
						back := filepath.Join(t.TempDir(), "back.raw")
						qemuImg(t, "convert", "-f", spec.QemuFormat, "-O", "raw", out, back)
						bf, err := os.Open(back)
						if err != nil {
							t.Fatal(err)
						}
						gotSum, n = readerSHA256(t, bf)
						bf.Close()
					}
					if n != sparseDiskSize || gotSum != wantSum {
						t.Errorf("%s decompresses to %d bytes (sha256 %s), qemu-img convert -O raw gives %d (sha256 %s)",
							spec.Name, n, gotSum, int64(sparseDiskSize), wantSum)
					}
				})
			}
		})
	}
}

// TestReadLayout checks the extents qemu-img map yields and that reading
// through them gives the guest bytes.
func TestReadLayout(t *testing.T) {
	requireTools(t, "qemu-img", "qemu-io")
	for _, inFmt := range []string{"raw", "qcow2", "qcow2-zero"} {
		t.Run(inFmt, func(t *testing.T) {
			in := newSparseInput(t, inFmt)
			info := qemuImgInfoT(t, in)
			layout, ok, err := readLayout(context.Background(), in, info)
			if err != nil || !ok {
				t.Fatalf("readLayout = %v, %v", ok, err)
			}
			defer layout.Close()
			if d := layout.dataBytes(); d <= 0 || d > 20<<20 {
				t.Errorf("data extents hold %d bytes of a %d byte disk with ~10 MiB of data", d, layout.size)
			}
			ref := filepath.Join(t.TempDir(), "reference.raw")
			qemuImg(t, "convert", "-O", "raw", in, ref)
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			// Odd-sized reads at odd offsets cross extent boundaries.
			buf := make([]byte, 777777)
			for off := int64(0); off < layout.size; off += int64(len(buf)) {
				p := buf[:min(int64(len(buf)), layout.size-off)]
				zero, err := layout.readAt(p, off)
				if err != nil {
					t.Fatal(err)
				}
				w := want[off : off+int64(len(p))]
				if !bytes.Equal(p, w) {
					t.Fatalf("bytes at %d differ from qemu-img convert -O raw", off)
				}
				if zero != isZero(w) {
					t.Fatalf("readAt(%d) says zero=%v", off, zero)
				}
			}
		})
	}
	t.Run("compressed clusters need a conversion", func(t *testing.T) {
		in := newSparseInput(t, "qcow2-zlib")
		_, ok, err := readLayout(context.Background(), in, qemuImgInfoT(t, in))
		if err != nil || ok {
			t.Fatalf("readLayout of a compressed qcow2 = %v, %v; want not ok, nil", ok, err)
		}
	})
}

func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 3<<20)
	for i := range data[:1<<20] {
		data[i] = byte(rng.Uint32())
	}
	for _, split := range []int{0, 1, 511, 1 << 20, 2<<20 + 3, len(data)} {
		a, b := data[:split], data[split:]
		got := crcCombine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), crcShift(int64(len(b))))
		if want := crc32.ChecksumIEEE(data); got != want {
			t.Errorf("split at %d: combined CRC %08x, want %08x", split, got, want)
		}
	}
}

// progressUI records the progress bar: its total and the bytes it counted.
type progressUI struct {
	*testUI
	mu           sync.Mutex
	total, count int64
}

func (u *progressUI) TrackProgress(src string, cur, total int64, stream io.ReadCloser) io.ReadCloser {
	u.mu.Lock()
	u.total = total
	u.mu.Unlock()
	return &countingProgress{ReadCloser: u.testUI.TrackProgress(src, cur, total, stream), ui: u}
}

type countingProgress struct {
	io.ReadCloser
	ui *progressUI
}

func (c *countingProgress) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.ui.mu.Lock()
	c.ui.count += int64(n)
	c.ui.mu.Unlock()
	return n, err
}

// TestStreamProgress checks the progress bar of the dd.* formats runs over
// the whole virtual disk, holes included.
func TestStreamProgress(t *testing.T) {
	requireTools(t, "qemu-img", "xz")
	in := newSparseInput(t, "qcow2")
	for _, format := range []string{"dd.gz", "dd.tgz", "dd.xz"} {
		t.Run(format, func(t *testing.T) {
			ui := &progressUI{testUI: newTestUI()}
			p := configure(t, map[string]interface{}{"format": format, "output": filepath.Join(t.TempDir(), "out."+format)})
			if _, _, err := postProcess(context.Background(), p, ui, in); err != nil {
				t.Fatal(err)
			}
			if ui.total != sparseDiskSize || ui.count != sparseDiskSize {
				t.Errorf("progress bar total %d, counted %d; want both %d", ui.total, ui.count, int64(sparseDiskSize))
			}
		})
	}
}

// TestSparseCancel cancels the dd.* writers after their first chunk of a
// disk spanning several chunks and xz runs: the error is the context's and
// nothing is left in the output directory.
func TestSparseCancel(t *testing.T) {
	requireTools(t, "qemu-img", "xz")
	in := newSparseInput(t, "qcow2")
	for _, format := range []string{"dd.gz", "dd.tgz", "dd.xz"} {
		t.Run(format, func(t *testing.T) {
			outDir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ui := newTestUI()
			var once sync.Once
			ui.onRead = func() { once.Do(cancel) }
			p := configure(t, map[string]interface{}{"format": format, "output": filepath.Join(outDir, "out."+format)})
			a, _, err := postProcess(ctx, p, ui, in)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("PostProcess = %v, %v; want context.Canceled", a, err)
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("after cancel the output directory holds %v", names)
			}
		})
	}
}
