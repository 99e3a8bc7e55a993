package glance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/linuximage"
)

// linuxSource is what a Linux image says about itself.
type linuxSource struct {
	OSRelease *linuximage.OSRelease
	// PointRelease is Debian's /etc/debian_version ("12.11"), the patch
	// level os-release's VERSION_ID ("12") leaves out.
	PointRelease string
}

// detectLinux reads the image's os-release when no winbake manifest says
// it is Windows: os_type = "linux" needs it, the default takes it when it
// is there.
func detectLinux(ctx context.Context, c *Config, src *source) error {
	if c.OSType == "windows" || (c.OSType == "" && src.Manifest != nil) {
		return nil
	}
	d, err := linuximage.Open(ctx, src.Path, os.Getenv("PACKER_TMP_DIR"))
	if err != nil {
		if c.OSType == "linux" || c.Layout == LayoutUEC {
			return fmt.Errorf("reading the Linux image %s: %w", src.Path, err)
		}
		return nil
	}
	defer d.Close()
	r, err := d.OSRelease(ctx)
	if err != nil {
		if c.OSType == "linux" || c.Layout == LayoutUEC {
			if _, set := c.Properties["os_distro"]; set && c.Layout != LayoutUEC {
				// The user says what it is.
				src.Linux = &linuxSource{}
				return nil
			}
			return fmt.Errorf("os_type = \"linux\": %w; set properties os_distro and os_version", err)
		}
		return nil
	}
	src.Linux = &linuxSource{OSRelease: r}
	if r.ID == "debian" {
		if b, err := d.ReadFile(ctx, r.Partition, "/etc/debian_version"); err == nil {
			src.Linux.PointRelease = strings.TrimSpace(string(b))
		} else if !errors.Is(err, linuximage.ErrNotFound) {
			return err
		}
	}
	return nil
}

// linuxProperties are the properties of a Linux image: Glance's "useful
// image properties" (os_type, os_distro, os_version) and SCS-0102's
// image_original_user and patchlevel.
func linuxProperties(c *Config, l *linuxSource) map[string]string {
	p := map[string]string{"os_type": "linux", "architecture": "x86_64"}
	if c.Family != "" {
		p["family"] = c.Family
	}
	if r := l.OSRelease; r != nil {
		p["os_distro"] = r.Distro()
		if r.VersionID != "" {
			p["os_version"] = r.VersionID
		}
		if u := linuximage.DefaultUser(r.ID); u != "" {
			p["image_original_user"] = u
		}
	}
	if l.PointRelease != "" {
		p["patchlevel"] = l.PointRelease
	}
	return p
}
