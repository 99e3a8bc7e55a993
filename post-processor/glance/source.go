package glance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// source is the image file to publish and what is known about the build.
type source struct {
	Path        string
	Size        int64
	DiskFormat  string // from qemu-img info
	VirtualSize int64
	// Manifest is the winbake build manifest, nil when none is reachable.
	Manifest     *buildManifest
	ManifestPath string
	// recorded is what winbake-compress recorded for the file, nil when
	// it does not come from winbake-compress.
	recorded *image.Output
	// Linux is set for a Linux image (os-release read, or os_type).
	Linux *linuxSource
	// ContainerFormat and Properties replace the configured ones (the
	// parts of a UEC triple); empty: the configuration's.
	ContainerFormat string
	Properties      map[string]string
}

// buildManifest is winbake's <vm_name>.json manifest, read with the types
// that write it: winbake-sysprep's (the builder's manifest with what
// sysprep did), which also reads a builder's manifest. The image
// properties come from the builder's fields: admin_user, qemu_guest_agent,
// iso_checksum and updates among them.
type buildManifest = image.GeneralizedManifest

// glanceDiskFormats maps qemu-img format names to Glance disk_format values.
var glanceDiskFormats = map[string]string{
	"qcow2": "qcow2", "raw": "raw", "vhdx": "vhdx", "vmdk": "vmdk", "vdi": "vdi", "vpc": "vhd", "parallels": "ploop",
}

// resolveSource finds the disk image in the input artifact (or image_file)
// and its manifest, and reads the disk format from the content.
func resolveSource(ctx context.Context, c *Config, a packersdk.Artifact) (*source, error) {
	src := &source{}
	manifestPath := c.Manifest
	switch {
	case c.ImageFile != "":
		src.Path = c.ImageFile
	case image.IsGolden(a):
		for _, f := range a.Files() {
			if strings.HasSuffix(f, ".qcow2") {
				src.Path = f
				break
			}
		}
		if m, ok := a.State("manifest").(string); ok && manifestPath == "" {
			manifestPath = m
		}
	case a.BuilderId() == image.CompressBuilderID:
		outputs, err := image.CompressedOutputs(a)
		if err != nil {
			return nil, err
		}
		for _, o := range outputs {
			if o.DiskFormat != "" {
				src.Path, src.recorded = o.Path, &o
				break
			}
		}
		if src.Path == "" {
			return nil, fmt.Errorf("the winbake-compress artifact holds %s, MAAS formats Glance cannot boot; add qcow2 (or raw, vhdx, vmdk) to winbake-compress's formats before winbake-glance", image.Formats(outputs))
		}
		if m, _ := a.State(image.StateManifest).(string); m != "" && manifestPath == "" {
			manifestPath = m
		}
	default:
		var disks []string
		for _, f := range a.Files() {
			if isDiskName(f) {
				disks = append(disks, f)
			}
		}
		if len(disks) == 1 {
			src.Path = disks[0]
		} else if len(a.Files()) == 1 {
			src.Path = a.Files()[0]
		} else {
			return nil, fmt.Errorf("image_file: the input artifact of builder %q has %d files %v and winbake-glance cannot tell which is the disk image; set image_file", a.BuilderId(), len(a.Files()), a.Files())
		}
	}
	if src.Path == "" {
		return nil, fmt.Errorf("image_file: the input artifact (builder %q) has no disk image; set image_file", a.BuilderId())
	}
	st, err := os.Stat(src.Path)
	if err != nil {
		return nil, fmt.Errorf("image file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("image file %s is not a regular file", src.Path)
	}
	src.Size = st.Size()
	if err := src.probeFormat(ctx); err != nil {
		return nil, err
	}
	if manifestPath == "" {
		manifestPath = findManifest(src.Path)
	}
	if err := src.check(ctx, manifestPath); err != nil {
		return nil, err
	}
	if manifestPath != "" {
		m, err := readManifest(manifestPath)
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		src.Manifest, src.ManifestPath = m, manifestPath
	}
	return src, nil
}

func isDiskName(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".qcow2", ".raw", ".img", ".vhdx", ".vmdk", ".vhd", ".vdi":
		return true
	}
	return false
}

// probeFormat runs qemu-img info on the file: Glance (≥ 2025.1) rejects a
// disk_format that does not match the content, and Nova boots what the
// disk_format says.
func (s *source) probeFormat(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", s.Path).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		if ee, ok := err.(*exec.Error); ok {
			msg = ee.Error() + " (install qemu-utils)"
		}
		return fmt.Errorf("reading the disk format of %s with qemu-img info: %s", s.Path, msg)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("qemu-img info %s: %w", s.Path, err)
	}
	f, ok := glanceDiskFormats[info.Format]
	if !ok {
		return fmt.Errorf("%s is a %s image, which Glance cannot take; convert it with winbake-compress (format qcow2, raw, vhdx or vmdk)", s.Path, info.Format)
	}
	s.DiskFormat, s.VirtualSize = f, info.VirtualSize
	return nil
}

// findManifest looks for the winbake manifest next to an image file:
// <vm_name>.json beside <vm_name>.qcow2, also when winbake-compress wrote
// <vm_name>-compressed.qcow2 or <vm_name>.raw there.
func findManifest(image string) string {
	dir, base := filepath.Dir(image), filepath.Base(image)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	for _, cand := range []string{stem, strings.TrimSuffix(stem, "-compressed")} {
		p := filepath.Join(dir, cand+".json")
		if m, err := readManifest(p); err == nil && m.Disk != "" {
			return p
		}
	}
	return ""
}

func readManifest(path string) (*buildManifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m buildManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not a winbake build manifest: %w", path, err)
	}
	return &m, nil
}
