// Package linuximage reads files from the Linux file systems of a disk
// image without mounting it and without root: /etc/os-release for the image
// properties, the kernel and initramfs in /boot for the UEC triple.
//
// The partition table (MBR or GPT) is read here; each partition is copied
// out of the image by qemu-img (its raw driver with offset and size over the
// image's own format driver, so qcow2 works and holes stay holes) and read
// with e2fsprogs' debugfs, which reads every ext2/3/4 feature current
// distributions enable (64bit, metadata_csum, extents, inline data). Pure-Go
// ext4 readers exist (github.com/dsoprea/go-ext4), but none is maintained;
// e2fsprogs is on every Linux host. Other root file systems (XFS, Btrfs,
// LVM) are reported as unreadable: their users give the properties.
package linuximage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Tools this package runs.
const (
	QemuImg = "qemu-img"
	Debugfs = "debugfs"
)

const sectorSize = 512

// Partition is one entry of the disk's partition table.
type Partition struct {
	Number int // 1-based, as Linux numbers them
	Start  int64
	Size   int64
	// Type is the MBR type byte ("0x83") or the GPT type GUID.
	Type string
}

// Disk is an opened disk image. Close removes the partition copies.
type Disk struct {
	Path   string
	Format string // qemu-img's name: qcow2, raw, ...
	// VirtualSize is the size of the disk the image holds.
	VirtualSize int64
	Partitions  []Partition
	// Whole: the disk has no partition table and holds one file system.
	Whole bool

	tmp    string
	copies map[int]string // partition number → raw copy
	ext    []int          // partitions holding ext2/3/4
}

// Open reads the image's format and partition table. tmpDir holds the
// partition copies ("" for the system's temporary directory).
func Open(ctx context.Context, image, tmpDir string) (*Disk, error) {
	if _, err := exec.LookPath(QemuImg); err != nil {
		return nil, fmt.Errorf("reading %s needs %s on PATH (Debian/Ubuntu package qemu-utils)", image, QemuImg)
	}
	if _, err := exec.LookPath(Debugfs); err != nil {
		return nil, fmt.Errorf("reading %s needs %s on PATH (Debian/Ubuntu package e2fsprogs)", image, Debugfs)
	}
	out, err := run(ctx, QemuImg, "info", "--output=json", image)
	if err != nil {
		return nil, err
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", image, err)
	}
	tmp, err := os.MkdirTemp(tmpDir, "winbake-linuximage-")
	if err != nil {
		return nil, err
	}
	d := &Disk{Path: image, Format: info.Format, VirtualSize: info.VirtualSize, tmp: tmp, copies: map[int]string{}}
	head := filepath.Join(tmp, "head.raw")
	// The MBR, the GPT header and 128 entries of 128 bytes: 34 sectors.
	headSize := min(int64(34*sectorSize), info.VirtualSize)
	if err := d.copyRange(ctx, 0, headSize, head); err != nil {
		_ = d.Close()
		return nil, err
	}
	b, err := os.ReadFile(head)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	d.Partitions, err = parseTable(b, info.VirtualSize)
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	if len(d.Partitions) == 0 {
		// A file system on the whole disk (a UEC root file system image).
		d.Whole = true
		d.Partitions = []Partition{{Number: 0, Start: 0, Size: info.VirtualSize, Type: "whole disk"}}
	}
	for _, p := range d.Partitions {
		if p.Size < 2048 {
			continue
		}
		sb := filepath.Join(tmp, "superblock.raw")
		if err := d.copyRange(ctx, p.Start+1024, 1024, sb); err != nil {
			_ = d.Close()
			return nil, err
		}
		s, _ := os.ReadFile(sb)
		// struct ext2_super_block: s_magic (0xEF53) at offset 56.
		if len(s) >= 58 && binary.LittleEndian.Uint16(s[56:]) == 0xEF53 {
			d.ext = append(d.ext, p.Number)
		}
	}
	return d, nil
}

// Close removes the partition copies.
func (d *Disk) Close() error {
	if d.tmp == "" {
		return nil
	}
	err := os.RemoveAll(d.tmp)
	d.tmp = ""
	return err
}

// ExtPartitions are the numbers of the partitions holding ext2/3/4 (0 for
// a file system on the whole disk).
func (d *Disk) ExtPartitions() []int { return append([]int(nil), d.ext...) }

// Describe lists the partitions for messages: "1 (0x83, 2 GiB, ext4)".
func (d *Disk) Describe() string {
	var parts []string
	for _, p := range d.Partitions {
		fs := ""
		for _, n := range d.ext {
			if n == p.Number {
				fs = ", ext2/3/4"
			}
		}
		parts = append(parts, fmt.Sprintf("%d (%s, %d MiB%s)", p.Number, p.Type, p.Size>>20, fs))
	}
	return strings.Join(parts, "; ")
}

// copyRange writes bytes [off, off+size) of the image's content to dst as
// a raw file, sparse where the image has holes.
func (d *Disk) copyRange(ctx context.Context, off, size int64, dst string) error {
	opts := fmt.Sprintf("driver=raw,offset=%d,size=%d,file.driver=%s,file.file.filename=%s", off, size, d.Format, escapeOpt(d.Path))
	if d.Format == "raw" {
		opts = fmt.Sprintf("driver=raw,offset=%d,size=%d,file.filename=%s", off, size, escapeOpt(d.Path))
	}
	_, err := run(ctx, QemuImg, "convert", "--image-opts", opts, "-O", "raw", dst)
	return err
}

// escapeOpt doubles the commas QEMU's option syntax would split a file
// name at.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// partitionFile is the raw copy of partition n, made on first use.
func (d *Disk) partitionFile(ctx context.Context, n int) (string, error) {
	if f, ok := d.copies[n]; ok {
		return f, nil
	}
	for _, p := range d.Partitions {
		if p.Number != n {
			continue
		}
		f := filepath.Join(d.tmp, fmt.Sprintf("part%d.raw", n))
		if err := d.copyRange(ctx, p.Start, p.Size, f); err != nil {
			return "", err
		}
		d.copies[n] = f
		return f, nil
	}
	return "", fmt.Errorf("%s has no partition %d", d.Path, n)
}

// ErrNotFound: the file is not in the file system.
var ErrNotFound = errors.New("file not found")

// debugfs runs one request against partition n. debugfs exits 0 also when
// the request fails; its errors are the stderr lines after its banner.
func (d *Disk) debugfs(ctx context.Context, n int, request string) ([]byte, error) {
	f, err := d.partitionFile(ctx, n)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, Debugfs, "-R", request, f)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("debugfs -R %q on partition %d of %s: %v: %s", request, n, d.Path, err, strings.TrimSpace(stderr.String()))
	}
	var msgs []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "debugfs ") {
			continue
		}
		msgs = append(msgs, line)
	}
	if len(msgs) > 0 {
		msg := strings.Join(msgs, "; ")
		if strings.Contains(msg, "File not found") {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, msg)
		}
		return nil, fmt.Errorf("debugfs -R %q on partition %d of %s: %s", request, n, d.Path, msg)
	}
	return stdout.Bytes(), nil
}

// resolve follows symbolic links of the last path component (up to 8),
// as os-release's /etc/os-release → ../usr/lib/os-release.
func (d *Disk) resolve(ctx context.Context, n int, p string) (string, error) {
	for hops := 0; hops < 8; hops++ {
		out, err := d.debugfs(ctx, n, "stat "+quote(p))
		if err != nil {
			return "", err
		}
		s := string(out)
		if !strings.Contains(s, "Type: symlink") {
			return p, nil
		}
		_, dest, ok := strings.Cut(s, "Fast link dest: \"")
		if !ok {
			// A long target lives in a data block: read it.
			b, err := d.debugfs(ctx, n, "cat "+quote(p))
			if err != nil {
				return "", err
			}
			dest = string(b)
		} else {
			dest, _, _ = strings.Cut(dest, "\"\n")
		}
		if !path.IsAbs(dest) {
			dest = path.Join(path.Dir(p), dest)
		}
		p = path.Clean(dest)
	}
	return "", fmt.Errorf("%s: too many symbolic links", p)
}

// ReadFile reads a file of partition n (resolving a link in its last
// component).
func (d *Disk) ReadFile(ctx context.Context, n int, p string) ([]byte, error) {
	p, err := d.resolve(ctx, n, p)
	if err != nil {
		return nil, err
	}
	return d.debugfs(ctx, n, "cat "+quote(p))
}

// CopyFile writes a file of partition n to dst.
func (d *Disk) CopyFile(ctx context.Context, n int, p, dst string) error {
	p, err := d.resolve(ctx, n, p)
	if err != nil {
		return err
	}
	if _, err := d.debugfs(ctx, n, "dump "+quote(p)+" "+quote(dst)); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err != nil {
		return fmt.Errorf("debugfs wrote no %s: %w", dst, err)
	}
	return nil
}

// Entry is a directory entry.
type Entry struct {
	Name string
	Mode uint32 // st_mode: type and permissions
	Size int64
}

// IsRegular reports a regular file; IsLink a symbolic link.
func (e Entry) IsRegular() bool { return e.Mode&0o170000 == 0o100000 }
func (e Entry) IsLink() bool    { return e.Mode&0o170000 == 0o120000 }

// ReadDir lists a directory of partition n.
func (d *Disk) ReadDir(ctx context.Context, n int, dir string) ([]Entry, error) {
	out, err := d.debugfs(ctx, n, "ls -p "+quote(dir))
	if err != nil {
		return nil, err
	}
	var entries []Entry
	// "ls -p": /inode/mode (octal)/uid/gid/name/size/
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." {
			continue
		}
		var e Entry
		e.Name = f[5]
		if _, err := fmt.Sscanf(f[2], "%o", &e.Mode); err != nil {
			return nil, fmt.Errorf("debugfs ls -p %s: mode %q: %w", dir, f[2], err)
		}
		// Directories have an empty size field.
		if _, err := fmt.Sscanf(f[6], "%d", &e.Size); err != nil && f[6] != "" {
			return nil, fmt.Errorf("debugfs ls -p %s: size %q: %w", dir, f[6], err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// quote puts a path in debugfs's double quotes.
func quote(p string) string { return `"` + strings.ReplaceAll(p, `"`, `\"`) + `"` }

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// PartitionFile is a raw copy of partition n (0: the whole-disk file
// system), made on first use and removed by Close.
func (d *Disk) PartitionFile(ctx context.Context, n int) (string, error) {
	return d.partitionFile(ctx, n)
}
