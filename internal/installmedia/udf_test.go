package installmedia

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCRCITUT(t *testing.T) {
	// The example of ECMA-167 3/7.2.6.
	if got := crcITUT([]byte{0x70, 0x6A, 0x77}); got != 0x3299 {
		t.Fatalf("crc = %#04x, want 0x3299", got)
	}
}

func TestDecodeCS0(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want string
		err  bool
	}{
		{nil, "", false},
		{[]byte("\x08sources"), "sources", false},
		{[]byte("\x08caf\xe9"), "café", false},
		{[]byte{16, 0, 'i', 0x30, 0xD5}, "iフ", false},
		{[]byte{16, 0xD8, 0x3D, 0xDE, 0x00}, "😀", false},
		{[]byte{254, 'a'}, "a", false},
		{[]byte{255, 0, 'a'}, "a", false},
		{[]byte{16, 0, 'a', 0}, "", true},
		{[]byte{7, 'a'}, "", true},
	} {
		got, err := decodeCS0(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("decodeCS0(%q) = %q, %v", tt.in, got, err)
		}
	}
}

// TestUDFGenisoimage reads the UDF 1.02 file system that genisoimage, an
// independent UDF writer, records next to ISO 9660.
func TestUDFGenisoimage(t *testing.T) {
	wim := buildWIM(t, server2022Images)
	tree := t.TempDir()
	for _, d := range []string{"sources", "boot", "efi/boot"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := readFile(t, wim)
	for name, content := range map[string][]byte{
		"sources/install.wim":  data,
		"sources/boot.wim":     []byte("boot"),
		"setup.exe":            []byte("MZ"),
		"efi/boot/bootx64.efi": []byte("MZ"),
	} {
		if err := os.WriteFile(filepath.Join(tree, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(t.TempDir(), "geniso.iso")
	run(t, "genisoimage", "-quiet", "-udf", "-J", "-R", "-V", "SSS_X64FREE", "-o", iso, tree)

	img := readFile(t, iso)
	v, err := openUDF(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if v.kind() != "UDF 1.02" {
		t.Errorf("kind = %q", v.kind())
	}
	if got := sortedNames(t, v, ""); !reflect.DeepEqual(got, []string{"boot/", "efi/", "setup.exe", "sources/"}) {
		t.Errorf("root = %q", got)
	}
	f, err := v.open("SOURCES/Install.Wim")
	if err != nil || f == nil {
		t.Fatalf("open: %v %v", f, err)
	}
	if f.path != "sources/install.wim" || f.size != int64(len(data)) {
		t.Errorf("file %q of %d bytes", f.path, f.size)
	}
	got := make([]byte, f.size)
	if _, err := f.r.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data differs (%v)", err)
	}

	m, err := ReadISO(iso)
	if err != nil {
		t.Fatal(err)
	}
	if m.Filesystem != "UDF 1.02" || m.ImagePath != "sources/install.wim" {
		t.Errorf("read from %q %q", m.Filesystem, m.ImagePath)
	}
	if got, want := imageNames(m.Images), testImageNames(server2022Images); !reflect.DeepEqual(got, want) {
		t.Fatalf("images = %q, want %q", got, want)
	}
}

// windowsTree returns a tree shaped like Windows install media.
func windowsTree(imageName string, image *udfNode) *udfNode {
	image.name = imageName
	return udfDir("",
		udfFileNode("autorun.inf", []byte("[AutoRun.Amd64]\r\nopen=setup.exe\r\n")),
		udfDir("boot", udfFileNode("bcd", make([]byte, 5000))),
		udfDir("efi", udfDir("microsoft", udfDir("boot", udfFileNode("efisys.bin", make([]byte, 3000))))),
		udfFileNode("setup.exe", []byte("MZ")),
		udfDir("sources", udfFileNode("boot.wim", []byte("boot")), image, udfFileNode("setup.exe", []byte("MZ"))),
		udfDir("support"),
	)
}

func TestUDFLayouts(t *testing.T) {
	srv := readFile(t, buildWIM(t, server2022Images))
	win := readFile(t, buildESD(t, buildWIM(t, windows11Images)))
	tests := []struct {
		name     string
		opt      udfBuildOptions
		file     string
		data     []byte
		embedded bool
		kind     string
		want     []testImage
	}{
		{"1.02 short ADs", udfBuildOptions{bridge: true}, "install.wim", srv, false, "UDF 1.02", server2022Images},
		{"1.02 long ADs", udfBuildOptions{longADs: true}, "install.wim", srv, false, "UDF 1.02", server2022Images},
		{"1.02 embedded", udfBuildOptions{}, "install.esd", win[:min(len(win), 1800)], true, "", nil},
		{"1.02 allocation extent chain", udfBuildOptions{inlineADs: 1, adsPerAED: 1, maxExtent: bs}, "install.wim", srv, false, "UDF 1.02", server2022Images},
		{"1.02 long allocation extent chain", udfBuildOptions{longADs: true, inlineADs: 2, adsPerAED: 1, maxExtent: bs}, "install.wim", srv, false, "UDF 1.02", server2022Images},
		{"2.50 metadata partition", udfBuildOptions{revision: 0x0250, bridge: true}, "install.esd", win, false, "UDF 2.50", windows11Images},
		{"2.50 allocation extent chain", udfBuildOptions{revision: 0x0250, inlineADs: 1, adsPerAED: 2, maxExtent: bs}, "INSTALL.ESD", win, false, "UDF 2.50", windows11Images},
		{"2.01", udfBuildOptions{revision: 0x0201}, "install.wim", srv, false, "UDF 2.01", server2022Images},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := udfFileNode(tt.file, tt.data)
			node.embedded = tt.embedded
			path := buildUDF(t, windowsTree(tt.file, node), tt.opt)
			img := readFile(t, path)
			v, err := openUDF(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			f, err := v.open("sources/" + tt.file)
			if err != nil || f == nil {
				t.Fatalf("open: %v %v", f, err)
			}
			if f.path != "sources/"+tt.file || f.size != int64(len(tt.data)) {
				t.Errorf("file %q of %d bytes", f.path, f.size)
			}
			got := make([]byte, f.size)
			if _, err := f.r.ReadAt(got, 0); err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("data differs (%v)", err)
			}
			// Reads across extents, at odd offsets.
			for _, off := range []int64{0, 1, bs - 1, bs, bs + 7, f.size - 3} {
				if off < 0 || off >= f.size {
					continue
				}
				buf := make([]byte, min(int64(3000), f.size-off))
				if n, err := f.r.ReadAt(buf, off); n != len(buf) || !bytes.Equal(buf, tt.data[off:off+int64(n)]) {
					t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
				}
			}
			if n, err := f.r.ReadAt(make([]byte, 10), f.size-4); n != 4 || err == nil {
				t.Fatalf("ReadAt past the end = %d, %v", n, err)
			}
			if want := []string{"autorun.inf", "boot/", "efi/", "setup.exe", "sources/", "support/"}; !reflect.DeepEqual(sortedNames(t, v, ""), want) {
				t.Errorf("root = %q", sortedNames(t, v, ""))
			}
			if got := sortedNames(t, v, "efi/microsoft/boot"); !reflect.DeepEqual(got, []string{"efisys.bin"}) {
				t.Errorf("efi/microsoft/boot = %q", got)
			}
			if got := sortedNames(t, v, "support"); len(got) != 0 {
				t.Errorf("support = %q", got)
			}
			if tt.want == nil {
				return
			}
			m, err := ReadISO(path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Filesystem != tt.kind || m.ImagePath != "sources/"+tt.file {
				t.Errorf("read from %q %q", m.Filesystem, m.ImagePath)
			}
			if got, want := imageNames(m.Images), testImageNames(tt.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("images = %q, want %q", got, want)
			}
		})
	}
}

// TestUDFBridge checks media laid out as oscdimg lays out Windows ISOs:
// the ISO 9660 file system holds only a README, the files are on UDF.
func TestUDFBridge(t *testing.T) {
	wim := readFile(t, buildWIM(t, server2025Images))
	path := buildUDF(t, windowsTree("install.wim", udfFileNode("", wim)), udfBuildOptions{bridge: true})
	img := readFile(t, path)

	iso, err := openISO9660(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedNames(t, iso, ""); !reflect.DeepEqual(got, []string{"README.TXT"}) {
		t.Fatalf("ISO 9660 root = %q", got)
	}
	m, err := ReadISO(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Filesystem != "UDF 1.02" {
		t.Errorf("read from %q", m.Filesystem)
	}
	if got, want := imageNames(m.Images), testImageNames(server2025Images); !reflect.DeepEqual(got, want) {
		t.Fatalf("images = %q, want %q", got, want)
	}
	if _, err := m.FindImage("Windows Server 2025 SERVERDATACENTER"); err != nil {
		t.Fatal(err)
	}

	// Without install.wim, the error says what both file systems hold.
	empty := buildUDF(t, udfDir("", udfDir("sources", udfFileNode("boot.wim", []byte("b"))), udfFileNode("setup.exe", nil)), udfBuildOptions{bridge: true})
	_, err = ReadISO(empty)
	wantErrContains(t, err, "found neither sources/install.wim nor sources/install.esd",
		"searched the UDF 1.02 file system and the ISO 9660 file system",
		"its UDF 1.02 file system holds setup.exe, sources/ (sources/ holds boot.wim)",
		"its ISO 9660 file system holds README.TXT")
}

// TestUDFLargeFile reads an install.wim of more than 4 GiB (recorded
// sparsely) whose XML data sits past 4 GiB, in several extents.
func TestUDFLargeFile(t *testing.T) {
	real := readFile(t, buildWIM(t, server2022Images))
	const size = 5<<30 + 12345
	for _, opt := range []udfBuildOptions{{bridge: true}, {revision: 0x0250}} {
		node := &udfNode{name: "install.wim", size: size, chunks: sparseWIM(t, real, size)}
		path := buildUDF(t, windowsTree("install.wim", node), opt)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() < size {
			t.Fatalf("image is %d bytes", st.Size())
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cr := &countingReader{r: f}
		m, err := readMedia(cr, st.Size())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := imageNames(m.Images), testImageNames(server2022Images); !reflect.DeepEqual(got, want) {
			t.Fatalf("images = %q, want %q", got, want)
		}
		if cr.n > 1<<20 {
			t.Errorf("read %d bytes of a %d-byte image", cr.n, st.Size())
		}
		img, _ := os.Open(path)
		v, err := openUDF(img, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		mf, err := v.open("sources/install.wim")
		if err != nil || mf.size != size {
			t.Fatalf("open: %v %v", mf, err)
		}
		if n := len(mf.r.(*extentReader).extents); n < 5 {
			t.Errorf("%d extents", n)
		}
		img.Close()
	}
}

// TestUDFCrossCheck checks the test images with independent readers, 7-Zip
// and udfinfo, so the reader is not only tested against a writer that
// shares its understanding of the format. (7-Zip does not follow
// allocation extent descriptors, so chained layouts are left out here.)
func TestUDFCrossCheck(t *testing.T) {
	wim := readFile(t, buildWIM(t, server2022Images[:2]))
	for _, tt := range []struct {
		opt  udfBuildOptions
		name string
		rev  string
	}{
		{udfBuildOptions{bridge: true}, "install.wim", "1.02"},
		{udfBuildOptions{longADs: true, maxExtent: bs}, "install.wim", "1.02"},
		{udfBuildOptions{revision: 0x0250, bridge: true}, "install.esd", "2.50"},
		{udfBuildOptions{revision: 0x0250, maxExtent: bs}, "install.wim", "2.50"},
	} {
		tree := windowsTree(tt.name, udfFileNode("", wim))
		tree.children = append(tree.children, udfFileNode("Ünïcødé ファイル.txt", []byte("names")),
			&udfNode{name: "small.txt", data: []byte("embedded data"), embedded: true})
		path := buildUDF(t, tree, tt.opt)

		info := string(run(t, "udfinfo", path))
		for _, want := range []string{"udfrev=" + tt.rev, "numfiles=9", "numdirs=7", "integrity=closed", "label=WINBAKE_UDF"} {
			if !strings.Contains(info, want+"\n") {
				t.Errorf("udfinfo for %+v lacks %q:\n%s", tt.opt, want, info)
			}
		}
		list := string(run(t, "7zz", "l", "-tudf", path))
		for _, want := range []string{"sources/" + tt.name, "efi/microsoft/boot/efisys.bin", "Ünïcødé ファイル.txt", "small.txt"} {
			if !strings.Contains(list, want) {
				t.Errorf("7-Zip listing for %+v lacks %q:\n%s", tt.opt, want, list)
			}
		}
		if got := run(t, "7zz", "e", "-tudf", "-so", path, "sources/"+tt.name); !bytes.Equal(got, wim) {
			t.Errorf("7-Zip extracts %d bytes that differ from the WIM", len(got))
		}
		if got := run(t, "7zz", "e", "-tudf", "-so", path, "small.txt"); string(got) != "embedded data" {
			t.Errorf("7-Zip extracts the embedded file as %q", got)
		}

		img := readFile(t, path)
		v, err := openUDF(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		f, err := v.open("ünïcødé ファイル.TXT")
		if err != nil || f == nil || f.path != "Ünïcødé ファイル.txt" {
			t.Fatalf("16-bit name: %v %v", f, err)
		}
	}
}

// TestUDFDamaged checks errors for damaged UDF structures.
func TestUDFDamaged(t *testing.T) {
	wim := readFile(t, buildWIM(t, server2022Images[:1]))
	path := buildUDF(t, windowsTree("install.wim", udfFileNode("", wim)), udfBuildOptions{bridge: true})
	good := readFile(t, path)
	damage := func(sectors ...int64) []byte {
		img := append([]byte(nil), good...)
		for _, s := range sectors {
			img[s*bs+20] ^= 0xFF
		}
		return img
	}
	// The reserve sequence stands in for a damaged main one.
	if m, err := readMedia(bytes.NewReader(damage(35)), int64(len(good))); err != nil || m.Filesystem != "UDF 1.02" {
		t.Fatalf("damaged main LVD: %v", err)
	}
	// The anchor at the end stands in for the one at sector 256.
	if m, err := readMedia(bytes.NewReader(damage(256)), int64(len(good))); err != nil || m.Filesystem != "UDF 1.02" {
		t.Fatalf("damaged first anchor: %v", err)
	}
	for _, tt := range []struct {
		name    string
		sectors []int64
		want    []string
	}{
		{"logical volume descriptors", []int64{35, 51}, []string{"cannot read its UDF file system", "no logical volume descriptor", "its ISO 9660 file system holds README.TXT"}},
		{"anchors", []int64{256, int64(len(good))/bs - 1}, []string{"no anchor volume descriptor pointer"}},
		{"file set descriptor", []int64{partitionStartSector}, []string{"file set descriptor", "CRC"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readMedia(bytes.NewReader(damage(tt.sectors...)), int64(len(good)))
			wantErrContains(t, err, tt.want...)
		})
	}
}

// TestUDFCorruption flips random bytes in the UDF structures: the reader
// must return errors or images, never panic or hang.
func TestUDFCorruption(t *testing.T) {
	wim := readFile(t, buildWIM(t, server2022Images[:1]))
	for _, opt := range []udfBuildOptions{{}, {revision: 0x0250, inlineADs: 1, maxExtent: bs}} {
		good := readFile(t, buildUDF(t, windowsTree("install.wim", udfFileNode("", wim)), opt))
		rng := newRand(3)
		// Volume descriptors (sectors 32-65), anchor, and the first 140
		// partition blocks (file set, entries, directories, metadata).
		regions := [][2]int64{{32, 66}, {256, 257}, {partitionStartSector, partitionStartSector + 140}}
		for i := 0; i < 300; i++ {
			img := append([]byte(nil), good...)
			for j := 0; j < 1+rng.Intn(6); j++ {
				r := regions[rng.Intn(len(regions))]
				at := (r[0]+rng.Int63n(r[1]-r[0]))*bs + rng.Int63n(bs)
				if at >= int64(len(img)) {
					continue
				}
				img[at] = byte(rng.Intn(256))
				if rng.Intn(2) == 0 {
					reseal(img[at/bs*bs : at/bs*bs+bs])
				}
			}
			m, err := readMedia(bytes.NewReader(img), int64(len(img)))
			if err == nil && len(m.Images) != 1 {
				t.Fatalf("no error and %d images", len(m.Images))
			}
		}
	}
}

// reseal recomputes the CRC and checksum of the descriptor starting a
// sector, so that corrupted contents get past the tag checks.
func reseal(sector []byte) {
	crcLen := int(binary.LittleEndian.Uint16(sector[10:12]))
	if 16+crcLen <= len(sector) {
		binary.LittleEndian.PutUint16(sector[8:], crcITUT(sector[16:16+crcLen]))
	}
	sector[4] = tagChecksum(sector)
}

// TestUDFMetadataPartition checks the metadata mirror standing in for a
// damaged metadata file, and the refusal of partition types this reader
// does not support.
func TestUDFMetadataPartition(t *testing.T) {
	wim := readFile(t, buildWIM(t, server2025Images))
	good := readFile(t, buildUDF(t, windowsTree("install.wim", udfFileNode("", wim)), udfBuildOptions{revision: 0x0250}))
	open := func(img []byte) (*Media, error) { return readMedia(bytes.NewReader(img), int64(len(img))) }

	img := append([]byte(nil), good...)
	img[partitionStartSector*bs+20] ^= 0xFF // metadata file entry
	if m, err := open(img); err != nil || len(m.Images) != 2 {
		t.Fatalf("with a damaged metadata file: %v", err)
	}
	img[(partitionStartSector+1)*bs+20] ^= 0xFF // and its mirror
	_, err := open(img)
	wantErrContains(t, err, "metadata file of partition map 1")

	for _, kind := range []string{"*UDF Sparable Partition", "*UDF Virtual Partition"} {
		img := append([]byte(nil), good...)
		for _, lvd := range []int{35, 51} {
			sector := img[lvd*bs : (lvd+1)*bs]
			copy(sector[440+6+5:], []byte(kind + "\x00\x00\x00\x00\x00\x00\x00")[:23])
			reseal(sector)
		}
		_, err := open(img)
		wantErrContains(t, err, "cannot read its UDF file system", kind, "does not support")
	}
}

// TestUDFEntryKinds checks errors for ICBs this reader refuses.
func TestUDFEntryKinds(t *testing.T) {
	wim := readFile(t, buildWIM(t, server2022Images[:1]))
	good := readFile(t, buildUDF(t, windowsTree("install.wim", udfFileNode("", wim)), udfBuildOptions{}))
	v, err := openUDF(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := v.walk("sources/install.wim")
	if err != nil || !ok {
		t.Fatal(err)
	}
	at := (partitionStartSector + int(e.icb.address.block)) * bs
	for _, tt := range []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"indirect entry", func(b []byte) { binary.LittleEndian.PutUint16(b, tagIndirectEntry) }, "indirect entry"},
		{"extended allocation descriptors", func(b []byte) { b[34] = 2 }, "allocation descriptor type 2"},
		{"oversized descriptors", func(b []byte) { binary.LittleEndian.PutUint32(b[172:], 4000) }, "more than a block"},
		{"not a file entry", func(b []byte) { binary.LittleEndian.PutUint16(b, tagTerminating) }, "not a file entry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := append([]byte(nil), good...)
			tt.patch(img[at : at+bs])
			reseal(img[at : at+bs])
			v, err := openUDF(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.open("sources/install.wim")
			wantErrContains(t, err, tt.want)
		})
	}
}
