package linuximage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Boot is a kernel and its initramfs found in the image.
type Boot struct {
	Partition int
	Kernel    string // path in the partition: /boot/vmlinuz-6.1.0-28-cloud-amd64
	Initrd    string // "" when the kernel has none
	Version   string
}

// initrdNames are the initramfs names of the kernel version v: Debian and
// Ubuntu (initramfs-tools), dracut (Fedora, RHEL), SUSE.
func initrdNames(v string) []string {
	return []string{"initrd.img-" + v, "initramfs-" + v + ".img", "initrd-" + v}
}

// Boot finds the newest kernel (vmlinuz-<version>) and its initramfs: in
// /boot of an ext partition, or at the top of a separate /boot partition.
// Rescue kernels (vmlinuz-0-rescue-…) are left out.
func (d *Disk) Boot(ctx context.Context) (*Boot, error) {
	var best *Boot
	for _, n := range d.ext {
		for _, dir := range []string{"/boot", "/"} {
			entries, err := d.ReadDir(ctx, n, dir)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			names := map[string]bool{}
			for _, e := range entries {
				if e.IsRegular() {
					names[e.Name] = true
				}
			}
			for name := range names {
				v, ok := strings.CutPrefix(name, "vmlinuz-")
				if !ok || strings.Contains(v, "rescue") {
					continue
				}
				b := &Boot{Partition: n, Kernel: join(dir, name), Version: v}
				for _, ird := range initrdNames(v) {
					if names[ird] {
						b.Initrd = join(dir, ird)
						break
					}
				}
				if best == nil || compareVersions(v, best.Version) > 0 {
					best = b
				}
			}
		}
		if best != nil {
			return best, nil
		}
	}
	return nil, fmt.Errorf("no kernel (vmlinuz-<version>) in /boot of %s (partitions: %s)", d.Path, d.Describe())
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// compareVersions orders kernel versions by their numbers: 6.1.0-28 after
// 6.1.0-9.
func compareVersions(a, b string) int {
	fa, fb := versionFields(a), versionFields(b)
	for i := 0; i < len(fa) && i < len(fb); i++ {
		na, ea := strconv.Atoi(fa[i])
		nb, eb := strconv.Atoi(fb[i])
		switch {
		case ea == nil && eb == nil && na != nb:
			if na < nb {
				return -1
			}
			return 1
		case (ea != nil || eb != nil) && fa[i] != fb[i]:
			return strings.Compare(fa[i], fb[i])
		}
	}
	return len(fa) - len(fb)
}

func versionFields(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' || r == '_' || r == '+' || r == '~' })
}
