package installmedia

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// synthWIM builds a WIM header followed by an uncompressed XML data
// resource, as Windows and wimlib write it: UTF-16LE with a byte order
// mark. The header claims imageCount images.
func synthWIM(xmlText string, imageCount uint32) []byte {
	units := utf16.Encode([]rune("\uFEFF" + xmlText))
	xmlBytes := make([]byte, 2*len(units))
	for i, u := range units {
		binary.LittleEndian.PutUint16(xmlBytes[2*i:], u)
	}
	h := make([]byte, wimHeaderSize)
	copy(h, wimMagic)
	binary.LittleEndian.PutUint32(h[wimOffHeaderSize:], wimHeaderSize)
	binary.LittleEndian.PutUint32(h[wimOffVersion:], 0x10d00)
	binary.LittleEndian.PutUint32(h[wimOffFlags:], 0x00040082)
	binary.LittleEndian.PutUint32(h[wimOffChunkSize:], 32768)
	binary.LittleEndian.PutUint16(h[wimOffPartNumber:], 1)
	binary.LittleEndian.PutUint16(h[wimOffTotalParts:], 1)
	binary.LittleEndian.PutUint32(h[wimOffImageCount:], imageCount)
	putResHdr(h[wimOffXMLResHdr:], uint64(len(xmlBytes)), 0, wimHeaderSize, uint64(len(xmlBytes)))
	return append(h, xmlBytes...)
}

func putResHdr(b []byte, sizeInWIM uint64, flags byte, offset, original uint64) {
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], sizeInWIM)
	copy(b[0:7], size[:7])
	b[7] = flags
	binary.LittleEndian.PutUint64(b[8:], offset)
	binary.LittleEndian.PutUint64(b[16:], original)
}

const server2022XML = `<WIM><TOTALBYTES>4669183488</TOTALBYTES>` +
	`<IMAGE INDEX="1"><DIRCOUNT>19783</DIRCOUNT><NAME>Windows Server 2022 SERVERSTANDARDCORE</NAME>` +
	`<DESCRIPTION>Windows Server 2022 Standard</DESCRIPTION><FLAGS>ServerStandardCore</FLAGS>` +
	`<WINDOWS><ARCH>9</ARCH><PRODUCTNAME>Microsoft® Windows® Operating System</PRODUCTNAME>` +
	`<EDITIONID>ServerStandardCore</EDITIONID><INSTALLATIONTYPE>Server Core</INSTALLATIONTYPE>` +
	`<PRODUCTTYPE>ServerNT</PRODUCTTYPE><PRODUCTSUITE>Terminal Server</PRODUCTSUITE>` +
	`<LANGUAGES><LANGUAGE>en-US</LANGUAGE><FALLBACK LANGUAGE="en-US">en-US</FALLBACK><DEFAULT>en-US</DEFAULT></LANGUAGES>` +
	`<VERSION><MAJOR>10</MAJOR><MINOR>0</MINOR><BUILD>20348</BUILD><SPBUILD>587</SPBUILD><SPLEVEL>0</SPLEVEL></VERSION>` +
	`<SYSTEMROOT>WINDOWS</SYSTEMROOT></WINDOWS><DISPLAYNAME>Windows Server 2022 Standard</DISPLAYNAME>` +
	`<DISPLAYDESCRIPTION>This option (recommended) reduces management and servicing by installing only what is needed to run most server roles and applications.</DISPLAYDESCRIPTION></IMAGE>` +
	`<IMAGE INDEX="2"><NAME>Windows Server 2022 SERVERDATACENTER</NAME><WINDOWS><ARCH>9</ARCH>` +
	`<INSTALLATIONTYPE>Server</INSTALLATIONTYPE><VERSION><MAJOR>10</MAJOR><MINOR>0</MINOR><BUILD>20348</BUILD><SPBUILD>587</SPBUILD></VERSION></WINDOWS></IMAGE>` +
	`</WIM>`

func TestSyntheticWIM(t *testing.T) {
	images, err := ReadWIMImages(bytes.NewReader(synthWIM(server2022XML, 2)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{{
		Index:              1,
		Name:               "Windows Server 2022 SERVERSTANDARDCORE",
		Description:        "Windows Server 2022 Standard",
		DisplayName:        "Windows Server 2022 Standard",
		DisplayDescription: "This option (recommended) reduces management and servicing by installing only what is needed to run most server roles and applications.",
		Flags:              "ServerStandardCore",
		ProductName:        "Microsoft® Windows® Operating System",
		EditionID:          "ServerStandardCore",
		InstallationType:   "Server Core",
		ProductType:        "ServerNT",
		Arch:               "amd64",
		Languages:          []string{"en-US"},
		DefaultLanguage:    "en-US",
		Version:            Version{10, 0, 20348, 587},
	}, {
		Index:            2,
		Name:             "Windows Server 2022 SERVERDATACENTER",
		InstallationType: "Server",
		Arch:             "amd64",
		Version:          Version{10, 0, 20348, 587},
	}}
	if !reflect.DeepEqual(images, want) {
		t.Fatalf("got  %+v\nwant %+v", images, want)
	}
	if got := images[0].Version.String(); got != "10.0.20348.587" {
		t.Errorf("Version.String() = %q", got)
	}
}

func TestRealWIM(t *testing.T) {
	wim := buildWIM(t, server2022Images)
	f, err := os.Open(wim)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	images, err := ReadWIMImages(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := imageNames(images), testImageNames(server2022Images); !reflect.DeepEqual(got, want) {
		t.Fatalf("names = %q, want %q", got, want)
	}
	dc := images[3]
	if dc.Index != 4 || dc.EditionID != "ServerDatacenter" || dc.InstallationType != "Server" ||
		dc.ProductType != "ServerNT" || dc.Arch != "amd64" || dc.Version != (Version{10, 0, 20348, 587}) ||
		!reflect.DeepEqual(dc.Languages, []string{"en-US", "de-DE"}) || dc.DefaultLanguage != "en-US" ||
		dc.ProductName != "Microsoft® Windows® Operating System" || dc.Flags != "ServerDatacenter" ||
		dc.DisplayName != "Windows Server 2022 SERVERDATACENTER" || dc.Description != dc.Name {
		t.Fatalf("image 4 = %+v", dc)
	}
	if images[0].InstallationType != "Server Core" {
		t.Errorf("image 1 installation type = %q", images[0].InstallationType)
	}
}

// TestWIMCompressionVariants reads WIMs written with each compression type
// wimlib offers, and ESD-style solid archives: the XML data stays
// uncompressed in all of them.
func TestWIMCompressionVariants(t *testing.T) {
	base := buildWIM(t, windows11Images)
	esd := buildESD(t, base)
	hdr := readFile(t, esd)[:wimHeaderSize]
	if v := binary.LittleEndian.Uint32(hdr[wimOffVersion:]); v != 0xE00 {
		t.Errorf("wimlib's solid export has header version %#x, want 0xe00 (ESD)", v)
	}
	variants := map[string]string{"solid LZMS (install.esd)": esd}
	for _, c := range []string{"none", "XPRESS", "LZX", "LZMS"} {
		out := writeFile(t, "x.wim", nil)
		os.Remove(out)
		run(t, "wimlib-imagex", "export", base, "all", out, "--compress="+c)
		variants[c] = out
	}
	for name, path := range variants {
		t.Run(name, func(t *testing.T) {
			images, err := ReadWIMImages(bytes.NewReader(readFile(t, path)))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := imageNames(images), testImageNames(windows11Images); !reflect.DeepEqual(got, want) {
				t.Fatalf("names = %q, want %q", got, want)
			}
			if images[1].Arch != "arm64" || images[1].Version.Build != 22631 || images[1].InstallationType != "Client" {
				t.Fatalf("image 2 = %+v", images[1])
			}
		})
	}
}

func TestWIMErrors(t *testing.T) {
	real := readFile(t, buildWIM(t, server2022Images[:2]))
	xmlOff := binary.LittleEndian.Uint64(real[wimOffXMLResHdr+8:])

	patch := func(f func(b []byte)) []byte {
		b := append([]byte(nil), real...)
		f(b)
		return b
	}
	garbage := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(garbage)

	pipable := readFile(t, func() string {
		out := writeFile(t, "pipable.wim", nil)
		os.Remove(out)
		run(t, "wimlib-imagex", "export", buildWIM(t, server2022Images[:1]), "all", out, "--pipable")
		return out
	}())

	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"not a WIM", "0 bytes"}},
		{"short magic", []byte("MSW"), []string{"not a WIM"}},
		{"garbage", garbage, []string{"not a WIM"}},
		{"ISO text", []byte(strings.Repeat("This disc contains a UDF file system. ", 20)), []string{"not a WIM"}},
		{"truncated header", real[:100], []string{"header truncated", "100 of 208"}},
		{"truncated before XML", real[:xmlOff], []string{"truncated"}},
		{"truncated in XML", real[:len(real)-1], []string{"truncated"}},
		{"header size", patch(func(b []byte) { b[wimOffHeaderSize] = 200 }), []string{"header size is 200"}},
		{"split part", patch(func(b []byte) {
			binary.LittleEndian.PutUint16(b[wimOffPartNumber:], 1)
			binary.LittleEndian.PutUint16(b[wimOffTotalParts:], 3)
		}), []string{"part 1 of 3", "split WIM", "install.swm"}},
		{"spanned flag", patch(func(b []byte) { b[wimOffFlags] |= wimFlagSpanned }), []string{"split WIM"}},
		{"write in progress", patch(func(b []byte) { b[wimOffFlags] |= wimFlagWriteInProgress }), []string{"still being written"}},
		{"compressed XML", patch(func(b []byte) { b[wimOffXMLResHdr+7] |= resFlagCompressed }), []string{"XML data resource is compressed", "flags 0x0"}},
		{"solid XML", patch(func(b []byte) { b[wimOffXMLResHdr+7] |= resFlagSolid }), []string{"compressed"}},
		{"no XML", patch(func(b []byte) { putResHdr(b[wimOffXMLResHdr:], 0, 0, 0, 0) }), []string{"no XML data"}},
		{"XML size mismatch", patch(func(b []byte) { b[wimOffXMLResHdr] ^= 2 }), []string{"inconsistent"}},
		{"huge XML", patch(func(b []byte) { putResHdr(b[wimOffXMLResHdr:], 1<<40, 0, 208, 1<<40) }), []string{"more than"}},
		{"odd XML", patch(func(b []byte) { putResHdr(b[wimOffXMLResHdr:], 1001, 0, 208, 1001) }), []string{"not UTF-16"}},
		{"XML offset in header", patch(func(b []byte) { putResHdr(b[wimOffXMLResHdr:], 100, 0, 8, 100) }), []string{"invalid offset"}},
		{"image count", patch(func(b []byte) { binary.LittleEndian.PutUint32(b[wimOffImageCount:], 5) }), []string{"counts 5 images", "describes 2"}},
		{"pipable", pipable, []string{"pipable"}},
		{"not XML", synthWIM("<WIM><IMAGE INDEX=\"1\"><NAME>x</IMAGE></WIM>", 1), []string{"not valid XML"}},
		{"wrong root", synthWIM("<WIMX/>", 0), []string{"root element <WIMX>"}},
		{"duplicate index", synthWIM(`<WIM><IMAGE INDEX="1"/><IMAGE INDEX="1"/></WIM>`, 2), []string{"index 1 twice"}},
		{"index gap", synthWIM(`<WIM><IMAGE INDEX="1"/><IMAGE INDEX="3"/></WIM>`, 2), []string{"no image with index 2"}},
		{"index zero", synthWIM(`<WIM><IMAGE INDEX="0"/></WIM>`, 1), []string{"index 0"}},
		{"bad build", synthWIM(`<WIM><IMAGE INDEX="1"><WINDOWS><VERSION><BUILD>20348a</BUILD></VERSION></WINDOWS></IMAGE></WIM>`, 1), []string{"VERSION/BUILD", "20348a"}},
		{"bad arch", synthWIM(`<WIM><IMAGE INDEX="1"><WINDOWS><ARCH>-1</ARCH></WINDOWS></IMAGE></WIM>`, 1), []string{"ARCH"}},
		{"latin1 declaration", synthWIM(`<?xml version="1.0" encoding="ISO-8859-1"?><WIM/>`, 0), []string{"ISO-8859-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			images, err := readWIMImages(bytes.NewReader(tt.data), int64(len(tt.data)))
			wantErrContains(t, err, tt.want...)
			if images != nil {
				t.Errorf("got images %v with the error", images)
			}
			// Without the size, the error is still clear.
			_, err = ReadWIMImages(bytes.NewReader(tt.data))
			if err == nil {
				t.Fatal("ReadWIMImages without size accepted it")
			}
		})
	}
	if _, err := ReadWIMImages(bytes.NewReader(nil)); !strings.Contains(err.Error(), "not a WIM") {
		t.Errorf("empty input: %v", err)
	}
	if _, err := ReadWIMImages(bytes.NewReader(garbage)); !errors.Is(err, errNotWIM) {
		t.Errorf("garbage: %v, want errNotWIM", err)
	}
}

func TestWIMXMLQuirks(t *testing.T) {
	tests := []struct {
		name, xml string
		count     uint32
		check     func(t *testing.T, images []Image)
	}{
		{"no images", `<WIM><TOTALBYTES>0</TOTALBYTES></WIM>`, 0, func(t *testing.T, images []Image) {
			if len(images) != 0 {
				t.Fatal(images)
			}
		}},
		{"utf-16 declaration", `<?xml version="1.0" encoding="UTF-16"?><WIM><IMAGE INDEX="1"><NAME>A</NAME></IMAGE></WIM>`, 1, func(t *testing.T, images []Image) {
			if images[0].Name != "A" {
				t.Fatal(images)
			}
		}},
		{"out of order", `<WIM><IMAGE INDEX="2"><NAME>B</NAME></IMAGE><IMAGE INDEX="1"><NAME>A</NAME></IMAGE></WIM>`, 2, func(t *testing.T, images []Image) {
			if images[0].Name != "A" || images[1].Name != "B" || images[1].Index != 2 {
				t.Fatal(images)
			}
		}},
		{"no index attributes", `<WIM><IMAGE><NAME>A</NAME></IMAGE><IMAGE><NAME>B</NAME></IMAGE></WIM>`, 2, func(t *testing.T, images []Image) {
			if images[1].Name != "B" || images[1].Index != 2 {
				t.Fatal(images)
			}
		}},
		{"hex and blanks", `<WIM><IMAGE INDEX=" 1 "><NAME>  Windows 11 Pro  </NAME><WINDOWS><ARCH>0xC</ARCH><VERSION><BUILD> 22000 </BUILD></VERSION></WINDOWS></IMAGE></WIM>`, 1, func(t *testing.T, images []Image) {
			if images[0].Name != "Windows 11 Pro" || images[0].Arch != "arm64" || images[0].Version.Build != 22000 {
				t.Fatal(images)
			}
		}},
		{"unknown arch", `<WIM><IMAGE INDEX="1"><WINDOWS><ARCH>13</ARCH></WINDOWS></IMAGE></WIM>`, 1, func(t *testing.T, images []Image) {
			if images[0].Arch != "unknown(13)" {
				t.Fatal(images)
			}
		}},
		{"no arch", `<WIM><IMAGE INDEX="1"><WINDOWS/></IMAGE></WIM>`, 1, func(t *testing.T, images []Image) {
			if images[0].Arch != "" {
				t.Fatal(images)
			}
		}},
		{"x86 and arm codes", `<WIM><IMAGE INDEX="1"><WINDOWS><ARCH>0</ARCH></WINDOWS></IMAGE><IMAGE INDEX="2"><WINDOWS><ARCH>5</ARCH></WINDOWS></IMAGE><IMAGE INDEX="3"><WINDOWS><ARCH>6</ARCH></WINDOWS></IMAGE></WIM>`, 3, func(t *testing.T, images []Image) {
			if images[0].Arch != "x86" || images[1].Arch != "arm" || images[2].Arch != "ia64" {
				t.Fatal(images)
			}
		}},
		{"non-BMP name", `<WIM><IMAGE INDEX="1"><NAME>Windows 𝟙𝟙 Pro</NAME></IMAGE></WIM>`, 1, func(t *testing.T, images []Image) {
			if images[0].Name != "Windows 𝟙𝟙 Pro" {
				t.Fatal(images)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			images, err := ReadWIMImages(bytes.NewReader(synthWIM(tt.xml, tt.count)))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, images)
		})
	}
}

// TestReadWIMReadsLittle checks that only the header and the XML resource
// are read, not the file resources.
func TestReadWIMReadsLittle(t *testing.T) {
	data := readFile(t, buildWIM(t, server2022Images))
	cr := &countingReader{r: bytes.NewReader(data)}
	if _, err := ReadWIMImages(cr); err != nil {
		t.Fatal(err)
	}
	xmlSize := binary.LittleEndian.Uint64(data[wimOffXMLResHdr+16:])
	if want := int64(wimHeaderSize) + int64(xmlSize); cr.n != want {
		t.Fatalf("read %d bytes, want header + XML = %d", cr.n, want)
	}
}

type countingReader struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}
