package maas

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// diskFile is the file winbake-maas uploads.
type diskFile struct {
	path     string
	format   string // winbake-compress format, e.g. "dd.gz"
	filetype string // MAAS filetype, e.g. "ddgz"
	sha256   string
	size     int64
}

// addCompress is the hint for inputs MAAS cannot deploy.
const addCompress = `add post-processor "winbake-compress" { format = "dd.gz" } before winbake-maas in the same post-processors chain (dd.tgz, dd.xz and raw work too)`

// inputImage checks that input is a winbake-compress artifact in a format
// MAAS deploys, and returns the file with its MAAS filetype and the
// recorded sha256 and size.
func inputImage(input packersdk.Artifact) (*diskFile, error) {
	if input == nil {
		return nil, fmt.Errorf("winbake-maas got no input artifact; %s", addCompress)
	}
	if input.BuilderId() != image.CompressBuilderID {
		return nil, fmt.Errorf("winbake-maas uploads the output of winbake-compress, got an artifact of %s; %s", input.BuilderId(), addCompress)
	}
	outputs, err := image.CompressedOutputs(input)
	if err != nil {
		return nil, err
	}
	// The first output MAAS deploys; MAAS takes an uncompressed raw disk
	// as ddraw.
	for _, o := range outputs {
		filetype := o.MaasFiletype
		if filetype == "" && o.Format == "raw" {
			filetype = "ddraw"
		}
		if filetype == "" {
			continue
		}
		if len(o.SHA256) != 64 || o.Size <= 0 {
			return nil, fmt.Errorf("the winbake-compress artifact %s does not record its sha256 and size", o.Path)
		}
		return &diskFile{path: o.Path, format: o.Format, filetype: filetype, sha256: o.SHA256, size: o.Size}, nil
	}
	return nil, fmt.Errorf("winbake-compress wrote %s, which MAAS cannot deploy; add \"dd.gz\" to winbake-compress's formats (or dd.tgz, dd.xz, raw)", image.Formats(outputs))
}

// detectFiletype reads the start of the file and returns the MAAS filetype
// its content is: ddgz (gzip), ddtgz (gzip holding a tar), ddxz (xz), or
// ddraw (none of these).
func detectFiletype(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 6)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "ddxz", nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return "", fmt.Errorf("%s starts like gzip but is not: %w", path, err)
		}
		block := make([]byte, 512)
		n, err := io.ReadFull(zr, block)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return "", fmt.Errorf("%s: reading the gzip stream: %w", path, err)
		}
		// A tar header has "ustar" at offset 257.
		if n >= 262 && string(block[257:262]) == "ustar" {
			return "ddtgz", nil
		}
		return "ddgz", nil
	}
	return "ddraw", nil
}
