package standin

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/setup"
)

// Partition is a partition found on a disk image.
type Partition struct {
	Number      int
	Start, Size uint64 // bytes
	// Type is the GPT type GUID or the MBR type as "0x07".
	Type   string
	Active bool
	Name   string // GPT name
	Attrs  uint64 // GPT attributes
}

// Image is a raw copy of a qcow2 disk, for reading it from the host.
type Image struct {
	Path       string
	Style      string // setup.StyleMBR or setup.StyleGPT
	BootCode   []byte // the first 440 bytes of sector 0
	Partitions []Partition
}

// RawImage converts a qcow2 disk (of a VM that is not running) to a sparse
// raw file in dir and reads its partition table.
func RawImage(qcow2, dir string) (*Image, error) {
	raw := filepath.Join(dir, filepath.Base(qcow2)+".raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", qcow2, raw).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img convert: %v: %s", err, out)
	}
	f, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 34*512)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, err
	}
	img := &Image{Path: raw, BootCode: head[:440]}
	if head[510] != 0x55 || head[511] != 0xAA {
		return img, fmt.Errorf("%s: no partition table (no 55AA signature)", qcow2)
	}
	if head[446+4] == 0xEE {
		img.Style = setup.StyleGPT
		h := head[512:]
		if !bytes.Equal(h[:8], []byte("EFI PART")) {
			return img, fmt.Errorf("%s: protective MBR without a GPT header", qcow2)
		}
		n := binary.LittleEndian.Uint32(h[80:])
		size := binary.LittleEndian.Uint32(h[84:])
		lba := binary.LittleEndian.Uint64(h[72:])
		entries := make([]byte, int(n*size))
		if _, err := f.ReadAt(entries, int64(lba)*512); err != nil {
			return img, err
		}
		for i := 0; i < int(n); i++ {
			e := entries[i*int(size):]
			if bytes.Equal(e[:16], make([]byte, 16)) {
				continue
			}
			first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
			var name []rune
			for j := 56; j+1 < 128; j += 2 {
				c := binary.LittleEndian.Uint16(e[j:])
				if c == 0 {
					break
				}
				name = append(name, rune(c))
			}
			img.Partitions = append(img.Partitions, Partition{Number: i + 1, Start: first * 512, Size: (last - first + 1) * 512,
				Type: setup.FormatGUID(e[:16]), Name: string(name), Attrs: binary.LittleEndian.Uint64(e[48:])})
		}
		return img, nil
	}
	img.Style = setup.StyleMBR
	for i := 0; i < 4; i++ {
		e := head[446+16*i:]
		if e[4] == 0 {
			continue
		}
		img.Partitions = append(img.Partitions, Partition{Number: i + 1,
			Start: uint64(binary.LittleEndian.Uint32(e[8:])) * 512, Size: uint64(binary.LittleEndian.Uint32(e[12:])) * 512,
			Type: fmt.Sprintf("0x%02X", e[4]), Active: e[0] == 0x80})
	}
	return img, nil
}

// ReadFile reads a file from a FAT partition of the image with mtools.
func (img *Image) ReadFile(partition int, path string) ([]byte, error) {
	for _, p := range img.Partitions {
		if p.Number == partition {
			cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img.Path, p.Start), "::/"+path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				return nil, fmt.Errorf("mtype %s from partition %d: %v: %s", path, partition, err, bytes.TrimSpace(stderr.Bytes()))
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("no partition %d", partition)
}

// List lists a directory of a FAT partition with mtools (mdir -b).
func (img *Image) List(partition int, dir string) (string, error) {
	for _, p := range img.Partitions {
		if p.Number == partition {
			out, err := exec.Command("mdir", "-b", "-i", fmt.Sprintf("%s@@%d", img.Path, p.Start), "::/"+dir).CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("mdir %s on partition %d: %v: %s", dir, partition, err, out)
			}
			return string(out), nil
		}
	}
	return "", fmt.Errorf("no partition %d", partition)
}

// State reads the stand-in's state from the Windows partition.
func (img *Image) State(partition int) (*setup.State, error) {
	dir, err := os.MkdirTemp("", "winbake-standin-state-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := img.ReadFile(partition, setup.StatePath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(setup.StatePath)), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, setup.StatePath), b, 0o644); err != nil {
		return nil, err
	}
	return setup.LoadState(dir)
}
