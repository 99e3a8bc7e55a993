package glance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/winbake/packer-plugin-winbake/internal/linuximage"
)

// uecPart is one image of a UEC triple.
type uecPart struct {
	Role string // kernel, ramdisk, root
	Src  *source
}

// uecParts takes the triple apart: the kernel and initramfs from
// kernel_file/ramdisk_file or the image's /boot, the root file system from
// the partition that holds os-release (or the whole file, when it is a
// bare file system). The copies live in a temporary directory that cleanup
// removes.
func uecParts(ctx context.Context, c *Config, src *source) (_ []uecPart, cleanup func(), err error) {
	d, err := linuximage.Open(ctx, src.Path, os.Getenv("PACKER_TMP_DIR"))
	if err != nil {
		return nil, func() {}, fmt.Errorf("layout = \"uec\": %w", err)
	}
	cleanup = func() { d.Close() }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	r, err := d.OSRelease(ctx)
	if err != nil {
		return nil, cleanup, fmt.Errorf("layout = \"uec\": finding the root file system: %w", err)
	}
	kernel, ramdisk := c.KernelFile, c.RamdiskFile
	if kernel == "" || ramdisk == "" {
		boot, err := d.Boot(ctx)
		if err != nil {
			return nil, cleanup, fmt.Errorf("layout = \"uec\": %w; or give kernel_file and ramdisk_file", err)
		}
		dir := filepath.Dir(must(d.PartitionFile(ctx, boot.Partition)))
		if kernel == "" {
			kernel = filepath.Join(dir, "vmlinuz")
			if err := d.CopyFile(ctx, boot.Partition, boot.Kernel, kernel); err != nil {
				return nil, cleanup, fmt.Errorf("layout = \"uec\": copying %s out of the image: %w", boot.Kernel, err)
			}
		}
		if ramdisk == "" {
			if boot.Initrd == "" {
				return nil, cleanup, fmt.Errorf("layout = \"uec\": the image's /boot has %s but no initramfs of version %s; give ramdisk_file", boot.Kernel, boot.Version)
			}
			ramdisk = filepath.Join(dir, "initrd")
			if err := d.CopyFile(ctx, boot.Partition, boot.Initrd, ramdisk); err != nil {
				return nil, cleanup, fmt.Errorf("layout = \"uec\": copying %s out of the image: %w", boot.Initrd, err)
			}
		}
	}
	root, err := d.PartitionFile(ctx, r.Partition)
	if err != nil {
		return nil, cleanup, err
	}
	var parts []uecPart
	for _, p := range []struct{ role, path, format string }{
		{"kernel", kernel, "aki"}, {"ramdisk", ramdisk, "ari"}, {"root", root, "ami"},
	} {
		st, err := os.Stat(p.path)
		if err != nil {
			return nil, cleanup, err
		}
		s := &source{Path: p.path, Size: st.Size(), DiskFormat: p.format, ContainerFormat: p.format, Linux: src.Linux}
		if p.role == "root" {
			s.VirtualSize = st.Size()
		}
		parts = append(parts, uecPart{Role: p.role, Src: s})
	}
	return parts, cleanup, nil
}

func must(s string, err error) string {
	if err != nil {
		return os.TempDir()
	}
	return s
}

// publishUEC uploads the kernel, then the ramdisk, then the root file
// system naming both; when one fails, every image it created is deleted.
func (p *publisher) publishUEC(ctx context.Context, c *Config, src *source) (kernel, ramdisk, root *images.Image, err error) {
	parts, cleanup, err := uecParts(ctx, c, src)
	defer cleanup()
	if err != nil {
		return nil, nil, nil, err
	}
	var created []string
	defer func() {
		if err == nil {
			return
		}
		for i := len(created) - 1; i >= 0; i-- {
			if derr := p.deleteImage(created[i], c.Protected); derr != nil {
				err = fmt.Errorf("%w; also %v", err, derr)
			} else {
				p.say(fmt.Sprintf("Deleted %s of the incomplete UEC triple", created[i]))
			}
		}
	}()
	done := map[string]*images.Image{}
	for _, part := range parts {
		name := c.Name
		props := map[string]string{"os_type": "linux", "winbake_uec_part": part.Role}
		if part.Role == "root" {
			props = imageProperties(c, src)
			props["kernel_id"] = done["kernel"].ID
			props["ramdisk_id"] = done["ramdisk"].ID
		} else {
			name = c.Name + " " + part.Role
		}
		part.Src.Properties = props
		img, err := p.uploadOne(ctx, part.Src, name, &created)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("layout = \"uec\", %s: %w", part.Role, err)
		}
		done[part.Role] = img
		p.say(fmt.Sprintf("UEC %s: image %s (%s) is active", part.Role, img.ID, part.Src.DiskFormat))
	}
	return done["kernel"], done["ramdisk"], done["root"], nil
}

// uploadOne creates an image, uploads the file, waits until it is active
// and checks its hashes; the ID goes into created as soon as it exists.
func (p *publisher) uploadOne(ctx context.Context, src *source, name string, created *[]string) (*images.Image, error) {
	img, err := p.createImage(ctx, src, name)
	if err != nil {
		return nil, err
	}
	*created = append(*created, img.ID)
	body, err := p.upload(ctx, img, src)
	if err != nil {
		return nil, err
	}
	active, err := p.waitActive(ctx, img.ID, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	if err := verify(active, body); err != nil {
		return nil, err
	}
	return active, nil
}
