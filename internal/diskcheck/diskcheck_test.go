package diskcheck

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// qcow2WithData is a 64 MiB qcow2 image with 24 MiB of data written.
func qcow2WithData(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", p, "64M")
	run(t, "qemu-io", "-c", "write -q -P 0xab 0 24M", p)
	return p
}

func copyTo(t *testing.T, src, dst string, size int64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		b = b[:size]
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestCheckAcceptsIntactImages(t *testing.T) {
	dir := t.TempDir()
	good := qcow2WithData(t, dir)
	img, err := Check(context.Background(), "input disk image", good)
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != "qcow2" || img.VirtualSize != 64<<20 {
		t.Errorf("got %+v", img)
	}
	raw := filepath.Join(dir, "disk.raw")
	run(t, "qemu-img", "convert", "-O", "raw", good, raw)
	if img, err := Check(context.Background(), "input disk image", raw); err != nil || img.Format != "raw" {
		t.Errorf("raw: %+v, %v", img, err)
	}
	vhdx := filepath.Join(dir, "disk.vhdx")
	run(t, "qemu-img", "convert", "-O", "vhdx", good, vhdx)
	if img, err := Check(context.Background(), "input disk image", vhdx); err != nil || img.Format != "vhdx" {
		t.Errorf("vhdx: %+v, %v", img, err)
	}
}

// The damaged images of a real fault: a qcow2 cut to half its size, one
// cut after its header, one whose L1 table offset points past the end,
// an empty file, and a raw disk cut inside a sector.
func TestCheckRefusesDamagedImages(t *testing.T) {
	dir := t.TempDir()
	good := qcow2WithData(t, dir)
	st, err := os.Stat(good)
	if err != nil {
		t.Fatal(err)
	}
	badL1 := copyTo(t, good, filepath.Join(dir, "bad-l1.qcow2"), -1)
	f, err := os.OpenFile(badL1, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// QCOW2 header: l1_table_offset is the 64-bit big-endian field at
	// byte 40 (docs/interop/qcow2.txt in QEMU's source).
	off := make([]byte, 8)
	binary.BigEndian.PutUint64(off, 1<<40)
	if _, err := f.WriteAt(off, 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rawCut := filepath.Join(dir, "cut.raw")
	if err := os.WriteFile(rawCut, bytes.Repeat([]byte{1}, 4096+100), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"truncated to half", copyTo(t, good, filepath.Join(dir, "half.qcow2"), st.Size()/2), "damaged qcow2 image: qemu-img check found"},
		{"header only", copyTo(t, good, filepath.Join(dir, "header.qcow2"), 512), "header.qcow2"},
		{"bad L1 offset", badL1, "bad-l1.qcow2"},
		{"empty", copyTo(t, good, filepath.Join(dir, "empty.qcow2"), 0), "is empty (0 bytes)"},
		{"raw cut inside a sector", rawCut, "not a whole number of 512-byte sectors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Check(context.Background(), "input disk image", tc.path)
			if err == nil {
				t.Fatalf("accepted: %+v", img)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q lacks %q or the path", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestRecorded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := []byte("winbake disk bytes")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	ctx := context.Background()
	if err := Recorded(ctx, p, int64(len(data)), good, "m.json"); err != nil {
		t.Fatal(err)
	}
	if err := Recorded(ctx, p, 0, "", "m.json"); err != nil {
		t.Fatal(err)
	}
	if err := Recorded(ctx, p, int64(len(data))+1, good, "m.json"); err == nil || !strings.Contains(err.Error(), "m.json records 19 bytes") {
		t.Errorf("size: %v", err)
	}
	bad := strings.Repeat("0", 64)
	if err := Recorded(ctx, p, int64(len(data)), bad, "m.json"); err == nil || !strings.Contains(err.Error(), "m.json records "+bad) {
		t.Errorf("sha256: %v", err)
	}
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCheckStream(t *testing.T) {
	dir := t.TempDir()
	disk := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gz := gzipped(t, disk)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "root-dd", Mode: 0o644, Size: int64(len(disk)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(disk); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tgz := gzipped(t, tb.Bytes())
	rawPath := write("disk.raw", disk)
	run(t, "xz", "-k", "-T1", rawPath)
	xz, err := os.ReadFile(rawPath + ".xz")
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(gz)
	flipped[len(flipped)/2] ^= 0xff
	for _, tc := range []struct {
		name, format string
		data         []byte
		want         string // "" when accepted
	}{
		{"gzip", "dd.gz", gz, ""},
		{"gzip truncated", "dd.gz", gz[:len(gz)/2], "ends early"},
		{"gzip altered", "dd.gz", flipped, "not an intact dd.gz stream"},
		{"gzip empty", "dd.gz", nil, "is empty"},
		{"tgz", "dd.tgz", tgz, ""},
		{"tgz truncated", "dd.tgz", tgz[:len(tgz)-40], "not an intact dd.tgz stream"},
		{"xz", "dd.xz", xz, ""},
		{"xz truncated", "dd.xz", xz[:len(xz)-30], "xz -t"},
		{"raw", "raw", disk, ""},
		{"raw cut", "raw", disk[:1000], "not a whole number of 512-byte sectors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name, tc.data)
			sum, size, err := CheckStream(context.Background(), p, tc.format)
			if tc.want == "" {
				want := sha256.Sum256(tc.data)
				if err != nil || sum != hex.EncodeToString(want[:]) || size != int64(len(tc.data)) {
					t.Errorf("got %s %d %v, want sha256 %x and %d bytes", sum, size, err, want, len(tc.data))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v, want one naming %s and %q", err, p, tc.want)
			}
		})
	}
}

func TestCheckStreamStopsWhenCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.gz")
	if err := os.WriteFile(p, gzipped(t, make([]byte, 1<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := CheckStream(ctx, p, "dd.gz"); err != context.Canceled {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
