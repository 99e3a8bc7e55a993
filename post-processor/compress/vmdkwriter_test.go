package compress

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeTestVMDK writes the raw disk src as a VMDK at out and returns the
// reported SHA-256 and size.
func writeTestVMDK(t *testing.T, src, out string) (string, int64) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, size, err := writeVMDK(context.Background(), rawLayout(t, src), f, vmdkOptions{
		extentName: filepath.Base(out), cid: 0x1234abcd, workers: 3,
	})
	if err != nil {
		t.Fatalf("writeVMDK: %v", err)
	}
	return sum, size
}

// TestVMDKWriterRoundTrip writes each test disk and checks that QEMU opens
// the image as a stream-optimized VMDK without errors and reads back the
// same bytes, that the reported SHA-256 and size are the file's, and that
// the file has the structure independent readers rely on.
func TestVMDKWriterRoundTrip(t *testing.T) {
	requireTools(t, "qemu-img")
	for name, d := range qcow2Disks {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src.raw")
			writeQcow2Disk(t, src, d)
			out := filepath.Join(dir, "out.vmdk")
			sum, size := writeTestVMDK(t, src, out)

			check := qemuImg(t, "check", "-f", "vmdk", out)
			if !strings.Contains(check, "No errors were found on the image.") {
				t.Errorf("qemu-img check %s:\n%s", out, check)
			}
			qemuImg(t, "compare", "-f", "raw", "-F", "vmdk", src, out)
			var info struct {
				Format         string `json:"format"`
				VirtualSize    int64  `json:"virtual-size"`
				FormatSpecific struct {
					Data struct {
						CreateType string `json:"create-type"`
						Extents    []struct {
							Compressed  bool  `json:"compressed"`
							ClusterSize int64 `json:"cluster-size"`
						} `json:"extents"`
					} `json:"data"`
				} `json:"format-specific"`
			}
			if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", "-f", "vmdk", out)), &info); err != nil {
				t.Fatal(err)
			}
			spec := info.FormatSpecific.Data
			if info.VirtualSize != d.size || spec.CreateType != "streamOptimized" || len(spec.Extents) != 1 ||
				!spec.Extents[0].Compressed || spec.Extents[0].ClusterSize != vmdkGrainSize {
				t.Errorf("qemu-img info: %+v", info)
			}
			if got := fileSHA256(t, out); got != sum {
				t.Errorf("reported sha256 %s, file hashes to %s", sum, got)
			}
			if fi, _ := os.Stat(out); fi.Size() != size {
				t.Errorf("reported size %d, file has %d bytes", size, fi.Size())
			}
			checkVMDKStructure(t, out, src)
			requireGlanceAccepts(t, out, "vmdk", d.size)
		})
	}
}

// checkVMDKStructure reads the image the way a streaming reader and
// OpenStack's format inspector do, without QEMU: the header's fields, a
// descriptor every line of which the inspector accepts, the two grain
// directories and their tables alike, and each grain a marker naming its
// own sector followed by a zlib stream of exactly one whole grain.
func checkVMDKStructure(t *testing.T, path, src string) {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The guest bytes through the layout: holes of the large disk read as
	// zeros without reading them.
	layout := rawLayout(t, src)
	le := binary.LittleEndian
	if len(img)%vmdkSector != 0 || len(img) < vmdkSector {
		t.Fatalf("file of %d bytes is not whole sectors", len(img))
	}
	h := img[:vmdkSector]
	if string(h[:4]) != "KDMV" || le.Uint32(h[4:]) != 3 {
		t.Fatalf("header starts %q, version %d", h[:4], le.Uint32(h[4:]))
	}
	flags := le.Uint32(h[8:])
	if flags != 0x30003 {
		t.Errorf("flags %#x, want newline detection, redundant GD, compressed grains and markers (0x30003)", flags)
	}
	capacity, grainSectors := le.Uint64(h[12:]), le.Uint64(h[20:])
	descOff, descSize := le.Uint64(h[28:]), le.Uint64(h[36:])
	gtes := le.Uint32(h[44:])
	rgd, gd, overhead := le.Uint64(h[48:]), le.Uint64(h[56:]), le.Uint64(h[64:])
	if capacity*512 != uint64(layout.size) || grainSectors != 128 || gtes != 512 {
		t.Errorf("capacity %d sectors, grain %d sectors, %d entries per table", capacity, grainSectors, gtes)
	}
	// The inspector refuses a footer (gdOffset all ones) and a descriptor
	// anywhere but at 0x200.
	if gd == ^uint64(0) || descOff != 1 {
		t.Errorf("gdOffset %#x, descriptor at sector %d", gd, descOff)
	}
	if string(h[73:77]) != "\n \r\n" || le.Uint16(h[77:]) != 1 {
		t.Errorf("newline check bytes %q, compression %d", h[73:77], le.Uint16(h[77:]))
	}

	desc := string(bytes.TrimRight(img[descOff*512:(descOff+descSize)*512], "\x00"))
	var extents []string
	for _, line := range strings.Split(desc, "\n") {
		line = strings.TrimSpace(line)
		for _, r := range line {
			if r > 0x7e {
				t.Errorf("descriptor line %q is not ASCII", line)
			}
		}
		lower := strings.ToLower(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(lower, "ddb"):
		case strings.Contains(line, "=") && !strings.Contains(strings.SplitN(line, "=", 2)[0], " "):
		case strings.HasPrefix(lower, "rw "):
			extents = append(extents, line)
		default:
			t.Errorf("descriptor line %q is none the inspector accepts", line)
		}
	}
	wantExtent := "RW " + strconv.FormatUint(capacity, 10) + ` SPARSE "` + filepath.Base(path) + `"`
	if len(extents) != 1 || extents[0] != wantExtent || !strings.Contains(desc, "createType=\"streamOptimized\"") {
		t.Errorf("descriptor extents %q (want %q):\n%s", extents, wantExtent, desc)
	}

	grains := (capacity + 127) / 128
	gtCount := (grains + 511) / 512
	table := func(dir uint64) []uint32 {
		var entries []uint32
		for i := range gtCount {
			gt := uint64(le.Uint32(img[dir*512+i*4:]))
			if gt == 0 || gt+4 > overhead {
				t.Fatalf("grain directory at %d: table %d at sector %d, metadata ends at %d", dir, i, gt, overhead)
			}
			for e := range uint64(512) {
				entries = append(entries, le.Uint32(img[gt*512+e*4:]))
			}
		}
		return entries
	}
	primary, redundant := table(gd), table(rgd)
	if !slices.Equal(primary, redundant) {
		t.Errorf("the redundant grain tables differ from the primary ones")
	}
	stored := 0
	for g, sector := range primary[:grains] {
		grain := make([]byte, vmdkGrainSize)
		zero, err := layout.readAt(grain, int64(g)*vmdkGrainSize)
		if err != nil {
			t.Fatal(err)
		}
		if sector == 0 {
			if !zero {
				t.Errorf("grain %d holds data but has no table entry", g)
			}
			continue
		}
		stored++
		off := int64(sector) * 512
		if uint64(sector) < overhead || off+vmdkMarkerSize > int64(len(img)) {
			t.Fatalf("grain %d at sector %d, outside the grain area", g, sector)
		}
		lba, n := le.Uint64(img[off:]), int64(le.Uint32(img[off+8:]))
		if lba != uint64(g)*128 || off+vmdkMarkerSize+n > int64(len(img)) {
			t.Fatalf("grain %d: marker says lba %d, %d bytes", g, lba, n)
		}
		zr, err := zlib.NewReader(bytes.NewReader(img[off+vmdkMarkerSize : off+vmdkMarkerSize+n]))
		if err != nil {
			t.Fatalf("grain %d: %v", g, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, grain) {
			t.Fatalf("grain %d inflates to %d bytes (%v), not its 64 KiB", g, len(got), err)
		}
	}
	t.Logf("%d of %d grains stored", stored, grains)
}

// TestVMDKWriterNoLargerThanQemuImg: on a disk of text, random data and
// holes the image is no larger than the one `qemu-img convert -O vmdk -o
// subformat=streamOptimized` writes.
func TestVMDKWriterNoLargerThanQemuImg(t *testing.T) {
	requireTools(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeQcow2Disk(t, src, qcow2Disks["sparse"])
	_, size := writeTestVMDK(t, src, filepath.Join(dir, "winbake.vmdk"))
	ref := filepath.Join(dir, "qemu.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, ref)
	fi, err := os.Stat(ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("winbake %d bytes, qemu-img %d bytes", size, fi.Size())
	if size > fi.Size() {
		t.Errorf("winbake's vmdk is %d bytes, qemu-img's %d", size, fi.Size())
	}
}

// TestVMDKWriterThroughPostProcessor: raw and qcow2 inputs are written from
// Go; an input with compressed clusters, whose guest bytes only qemu-img
// reads, goes to qemu-img. Both outputs hold the test disk.
func TestVMDKWriterThroughPostProcessor(t *testing.T) {
	requireTools(t, "qemu-img")
	for input, goWriter := range map[string]bool{"raw": true, "qcow2": true, "qcow2-zlib": false} {
		t.Run(input, func(t *testing.T) {
			t.Parallel()
			in := newInput(t, input)
			out := filepath.Join(t.TempDir(), "disk image.vmdk")
			p := configure(t, map[string]interface{}{"format": "vmdk", "output": out})
			ui := newTestUI()
			if _, _, err := postProcess(context.Background(), p, ui, in); err != nil {
				t.Fatalf("PostProcess: %v", err)
			}
			msgs := ui.messages()
			if got := strings.Contains(msgs, "Writing stream-optimized vmdk"); got != goWriter {
				t.Errorf("written from Go: %v, want %v; ui:\n%s", got, goWriter, msgs)
			}
			if got := strings.Contains(msgs, "with qemu-img"); got == goWriter {
				t.Errorf("converted by qemu-img: %v, want %v; ui:\n%s", got, !goWriter, msgs)
			}
			checkRoundTrip(t, "vmdk", out)
		})
	}
}

// TestVMDKWriterCancel cancels the writer while it compresses and while it
// hashes: the error is the context's and the output directory is empty.
func TestVMDKWriterCancel(t *testing.T) {
	checkWriterCancel(t, "vmdk", "read", "Computing SHA-256")
}

// TestVMDKGeometry: the metadata is placed as QEMU's vmdk_init_extent
// places it, and sizes a sparse extent cannot hold are refused.
func TestVMDKGeometry(t *testing.T) {
	g, err := newVMDKGeometry(16 << 30)
	if err != nil {
		t.Fatal(err)
	}
	// 16 GiB: 262144 grains, 512 tables of 4 sectors, a 4-sector directory.
	want := vmdkGeometry{capacity: 33554432, grains: 262144, gtCount: 512, gdSectors: 4,
		rgdOffset: 21, gdOffset: 21 + 4 + 2048, grainOffset: 4224}
	if g != want {
		t.Errorf("16 GiB geometry %+v, want %+v", g, want)
	}
	for _, size := range []int64{0, 1000, 2 << 40} {
		if _, err := newVMDKGeometry(size); err == nil {
			t.Errorf("virtual size %d accepted", size)
		}
	}
}

// TestDescriptorFileName: the extent line gets printable ASCII without
// quotes or path separators.
func TestDescriptorFileName(t *testing.T) {
	for in, want := range map[string]string{
		"win2022.vmdk":     "win2022.vmdk",
		"disk image.vmdk":  "disk image.vmdk",
		"ünï\"code\n.vmdk": "_n__code_.vmdk",
		`back\slash.vmdk`:  "back_slash.vmdk",
	} {
		if got := descriptorFileName(in); got != want {
			t.Errorf("descriptorFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
