package installmedia

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// WIM header layout (all integers little-endian).
const (
	wimHeaderSize = 208

	wimOffMagic      = 0
	wimOffHeaderSize = 8
	wimOffVersion    = 12
	wimOffFlags      = 16
	wimOffChunkSize  = 20
	wimOffPartNumber = 40
	wimOffTotalParts = 42
	wimOffImageCount = 44
	wimOffXMLResHdr  = 72 // after the 24-byte offset table resource header

	// Header flags.
	wimFlagSpanned         = 0x00000008
	wimFlagWriteInProgress = 0x00000040

	// Resource header flags.
	resFlagCompressed = 0x04
	resFlagSpanned    = 0x08
	resFlagSolid      = 0x10

	// maxXMLSize bounds the XML resource read: real install media carry a
	// few hundred KiB at most.
	maxXMLSize = 32 << 20
)

var (
	wimMagic         = []byte("MSWIM\x00\x00\x00")
	wimPipableMagic  = []byte("WLPWM\x00\x00\x00")
	errNotWIM        = errors.New("not a WIM or ESD file: no MSWIM magic")
	errSplitWIMNotes = "split WIMs (install.swm, install2.swm, ...) are not supported; use media with a single install.wim or install.esd"
)

// resourceHeader is a WIM resource header: 7-byte size in the WIM, 1 flags
// byte, 8-byte offset and 8-byte original (uncompressed) size.
type resourceHeader struct {
	sizeInWIM    uint64
	flags        byte
	offset       uint64
	originalSize uint64
}

func parseResourceHeader(b []byte) resourceHeader {
	var size [8]byte
	copy(size[:7], b[0:7])
	return resourceHeader{
		sizeInWIM:    binary.LittleEndian.Uint64(size[:]),
		flags:        b[7],
		offset:       binary.LittleEndian.Uint64(b[8:16]),
		originalSize: binary.LittleEndian.Uint64(b[16:24]),
	}
}

// wimHeader holds the header fields this package uses.
type wimHeader struct {
	version    uint32
	flags      uint32
	partNumber uint16
	totalParts uint16
	imageCount uint32
	xml        resourceHeader
}

func parseWIMHeader(b []byte) (wimHeader, error) {
	if len(b) < wimHeaderSize {
		return wimHeader{}, fmt.Errorf("WIM header truncated: %d of %d bytes", len(b), wimHeaderSize)
	}
	if bytes.Equal(b[:8], wimPipableMagic) {
		return wimHeader{}, errors.New("this is a pipable WIM (wimlib's WLPWM format), which Windows Setup cannot install from")
	}
	if !bytes.Equal(b[wimOffMagic:wimOffMagic+8], wimMagic) {
		return wimHeader{}, errNotWIM
	}
	if hs := binary.LittleEndian.Uint32(b[wimOffHeaderSize:]); hs != wimHeaderSize {
		return wimHeader{}, fmt.Errorf("WIM header size is %d, want %d", hs, wimHeaderSize)
	}
	h := wimHeader{
		version:    binary.LittleEndian.Uint32(b[wimOffVersion:]),
		flags:      binary.LittleEndian.Uint32(b[wimOffFlags:]),
		partNumber: binary.LittleEndian.Uint16(b[wimOffPartNumber:]),
		totalParts: binary.LittleEndian.Uint16(b[wimOffTotalParts:]),
		imageCount: binary.LittleEndian.Uint32(b[wimOffImageCount:]),
		xml:        parseResourceHeader(b[wimOffXMLResHdr : wimOffXMLResHdr+24]),
	}
	if h.totalParts > 1 || h.flags&wimFlagSpanned != 0 {
		return wimHeader{}, fmt.Errorf("this WIM is part %d of %d of a split WIM; %s", h.partNumber, h.totalParts, errSplitWIMNotes)
	}
	if h.flags&wimFlagWriteInProgress != 0 {
		return wimHeader{}, errors.New("the WIM is marked as still being written (write-in-progress flag); it is incomplete")
	}
	return h, nil
}

// ReadWIMImages reads the image list of a WIM (install.wim) or ESD
// (install.esd) file. It reads the 208-byte header and the XML data
// resource only, never the file resources.
func ReadWIMImages(r io.ReaderAt) ([]Image, error) {
	return readWIMImages(r, -1)
}

// readWIMImages is ReadWIMImages with the file size, when known (>= 0), to
// tell truncated files apart.
func readWIMImages(r io.ReaderAt, size int64) ([]Image, error) {
	hdr := make([]byte, wimHeaderSize)
	n, err := r.ReadAt(hdr, 0)
	if n < wimHeaderSize {
		if n >= 8 && !bytes.Equal(hdr[:8], wimMagic) && !bytes.Equal(hdr[:8], wimPipableMagic) {
			return nil, errNotWIM
		}
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			if n < 8 {
				return nil, fmt.Errorf("not a WIM or ESD file: only %d bytes long", n)
			}
			return nil, fmt.Errorf("WIM header truncated: file has %d of %d header bytes", n, wimHeaderSize)
		}
		return nil, fmt.Errorf("reading WIM header: %w", err)
	}
	h, err := parseWIMHeader(hdr)
	if err != nil {
		return nil, err
	}
	xmlText, err := readXMLResource(r, size, h.xml)
	if err != nil {
		return nil, err
	}
	images, err := parseWIMXML(xmlText)
	if err != nil {
		return nil, err
	}
	if uint64(len(images)) != uint64(h.imageCount) {
		return nil, fmt.Errorf("WIM header counts %d images but its XML describes %d", h.imageCount, len(images))
	}
	return images, nil
}

// readXMLResource reads and decodes the UTF-16LE XML data resource.
func readXMLResource(r io.ReaderAt, size int64, res resourceHeader) (string, error) {
	if res.flags&(resFlagCompressed|resFlagSolid) != 0 {
		return "", fmt.Errorf("the WIM's XML data resource is compressed (resource flags 0x%02x); only uncompressed XML data, as Windows and wimlib write it, is supported", res.flags)
	}
	if res.flags&resFlagSpanned != 0 {
		return "", fmt.Errorf("the WIM's XML data resource spans parts of a split WIM; %s", errSplitWIMNotes)
	}
	if res.originalSize == 0 {
		return "", errors.New("the WIM has no XML data resource (no image metadata)")
	}
	if res.sizeInWIM != res.originalSize {
		return "", fmt.Errorf("the WIM's XML data resource is inconsistent: %d bytes stored for %d bytes of data, but it is not marked compressed", res.sizeInWIM, res.originalSize)
	}
	if res.originalSize > maxXMLSize {
		return "", fmt.Errorf("the WIM's XML data resource is %d bytes, more than the %d this reader accepts", res.originalSize, maxXMLSize)
	}
	if res.originalSize%2 != 0 || res.originalSize < 2 {
		return "", fmt.Errorf("the WIM's XML data resource is %d bytes, not UTF-16 text", res.originalSize)
	}
	if res.offset < wimHeaderSize || res.offset > 1<<62 {
		return "", fmt.Errorf("the WIM's XML data resource has an invalid offset %d", res.offset)
	}
	end := res.offset + res.originalSize
	if size >= 0 && end > uint64(size) {
		return "", fmt.Errorf("the WIM is truncated: its XML data resource ends at byte %d but the file has %d bytes", end, size)
	}
	buf := make([]byte, res.originalSize)
	n, err := r.ReadAt(buf, int64(res.offset))
	if n < len(buf) {
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			return "", fmt.Errorf("the WIM is truncated: its XML data resource ends at byte %d but the file ends at byte %d", end, res.offset+uint64(n))
		}
		return "", fmt.Errorf("reading the WIM's XML data resource: %w", err)
	}
	return decodeUTF16LE(buf), nil
}

// decodeUTF16LE decodes UTF-16LE text, dropping a leading byte order mark.
// Unpaired surrogates become U+FFFD.
func decodeUTF16LE(b []byte) string {
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	if len(units) > 0 && units[0] == 0xFEFF {
		units = units[1:]
	}
	return string(utf16.Decode(units))
}

// XML layout of the WIM data resource (only the elements used here).
type wimXML struct {
	XMLName xml.Name
	Images  []wimXMLImage `xml:"IMAGE"`
}

type wimXMLImage struct {
	Index              string `xml:"INDEX,attr"`
	Name               string `xml:"NAME"`
	Description        string `xml:"DESCRIPTION"`
	DisplayName        string `xml:"DISPLAYNAME"`
	DisplayDescription string `xml:"DISPLAYDESCRIPTION"`
	Flags              string `xml:"FLAGS"`
	Windows            struct {
		Arch             *string `xml:"ARCH"`
		ProductName      string  `xml:"PRODUCTNAME"`
		EditionID        string  `xml:"EDITIONID"`
		InstallationType string  `xml:"INSTALLATIONTYPE"`
		ProductType      string  `xml:"PRODUCTTYPE"`
		Languages        struct {
			Language []string `xml:"LANGUAGE"`
			Default  string   `xml:"DEFAULT"`
		} `xml:"LANGUAGES"`
		Version struct {
			Major   string `xml:"MAJOR"`
			Minor   string `xml:"MINOR"`
			Build   string `xml:"BUILD"`
			SPBuild string `xml:"SPBUILD"`
		} `xml:"VERSION"`
	} `xml:"WINDOWS"`
}

// parseWIMXML parses the decoded XML data resource into images sorted by
// index.
func parseWIMXML(text string) ([]Image, error) {
	dec := xml.NewDecoder(strings.NewReader(text))
	// The text is already decoded to UTF-8; a declaration naming UTF-16
	// must not make the decoder give up.
	dec.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-16", "utf-16le", "unicode", "utf-8", "us-ascii":
			return input, nil
		}
		return nil, fmt.Errorf("unsupported XML encoding %q", label)
	}
	var doc wimXML
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the WIM's XML data is not valid XML: %w", err)
	}
	if doc.XMLName.Local != "WIM" {
		return nil, fmt.Errorf("the WIM's XML data has root element <%s>, want <WIM>", doc.XMLName.Local)
	}
	images := make([]Image, 0, len(doc.Images))
	seen := map[int]bool{}
	for i, x := range doc.Images {
		img, err := x.image(i + 1)
		if err != nil {
			return nil, err
		}
		if seen[img.Index] {
			return nil, fmt.Errorf("the WIM's XML data lists image index %d twice", img.Index)
		}
		seen[img.Index] = true
		images = append(images, img)
	}
	sort.SliceStable(images, func(i, j int) bool { return images[i].Index < images[j].Index })
	for i, img := range images {
		if img.Index != i+1 {
			return nil, fmt.Errorf("the WIM's XML data has no image with index %d (found index %d)", i+1, img.Index)
		}
	}
	return images, nil
}

func (x wimXMLImage) image(position int) (Image, error) {
	img := Image{
		Index:              position,
		Name:               strings.TrimSpace(x.Name),
		Description:        strings.TrimSpace(x.Description),
		DisplayName:        strings.TrimSpace(x.DisplayName),
		DisplayDescription: strings.TrimSpace(x.DisplayDescription),
		Flags:              strings.TrimSpace(x.Flags),
		ProductName:        strings.TrimSpace(x.Windows.ProductName),
		EditionID:          strings.TrimSpace(x.Windows.EditionID),
		InstallationType:   strings.TrimSpace(x.Windows.InstallationType),
		ProductType:        strings.TrimSpace(x.Windows.ProductType),
		DefaultLanguage:    strings.TrimSpace(x.Windows.Languages.Default),
	}
	for _, l := range x.Windows.Languages.Language {
		if l = strings.TrimSpace(l); l != "" {
			img.Languages = append(img.Languages, l)
		}
	}
	var err error
	field := func(name, value string) int {
		if err != nil {
			return 0
		}
		var v int
		v, err = parseXMLNumber(value)
		if err != nil {
			err = fmt.Errorf("the WIM's XML data has an invalid %s %q for image %d: %w", name, value, position, err)
		}
		return v
	}
	if x.Index != "" {
		img.Index = field("INDEX", x.Index)
		if err == nil && img.Index < 1 {
			err = fmt.Errorf("the WIM's XML data has image index %d; indexes start at 1", img.Index)
		}
	}
	if x.Windows.Arch != nil {
		img.Arch = archName(field("ARCH", *x.Windows.Arch))
	}
	img.Version.Major = field("VERSION/MAJOR", x.Windows.Version.Major)
	img.Version.Minor = field("VERSION/MINOR", x.Windows.Version.Minor)
	img.Version.Build = field("VERSION/BUILD", x.Windows.Version.Build)
	img.Version.SPBuild = field("VERSION/SPBUILD", x.Windows.Version.SPBuild)
	if err != nil {
		return Image{}, err
	}
	return img, nil
}

// parseXMLNumber parses a decimal or 0x-prefixed hexadecimal number; empty
// means 0.
func parseXMLNumber(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	base := 10
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s, base = s[2:], 16
	}
	v, err := strconv.ParseUint(s, base, 31)
	if err != nil {
		return 0, errors.New("not a number in range")
	}
	return int(v), nil
}
