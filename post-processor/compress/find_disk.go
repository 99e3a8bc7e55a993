package compress

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// findDiskImage picks the disk image among files: the only file, else the one
// file qemu-img recognises as a non-raw image, else the one raw file named
// *.raw or *.img.
func findDiskImage(ctx context.Context, files []string) (string, imageInfo, error) {
	type candidate struct {
		path string
		info imageInfo
	}
	var all []candidate
	var listed []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", imageInfo{}, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", imageInfo{}, fmt.Errorf("input artifact file %s: %w", f, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		info, err := qemuImgInfo(ctx, abs)
		if err != nil {
			return "", imageInfo{}, fmt.Errorf("inspecting input artifact file %s: %w", abs, err)
		}
		all = append(all, candidate{abs, info})
		listed = append(listed, fmt.Sprintf("%s (%s)", abs, info.Format))
	}
	pick := func(cs []candidate) (string, imageInfo, error) {
		return cs[0].path, cs[0].info, nil
	}
	switch len(all) {
	case 0:
		return "", imageInfo{}, fmt.Errorf("the input artifact has no regular file to use as disk image (files: %s)",
			strings.Join(files, ", "))
	case 1:
		return pick(all)
	}

	var images, rawByName []candidate
	for _, cand := range all {
		if cand.info.Format != "raw" {
			images = append(images, cand)
			continue
		}
		switch strings.ToLower(filepath.Ext(cand.path)) {
		case ".raw", ".img":
			rawByName = append(rawByName, cand)
		}
	}
	switch {
	case len(images) == 1:
		return pick(images)
	case len(images) > 1:
		return "", imageInfo{}, fmt.Errorf("the input artifact has several disk images, cannot tell which to use: %s",
			strings.Join(listed, ", "))
	case len(rawByName) == 1:
		return pick(rawByName)
	}
	return "", imageInfo{}, fmt.Errorf("cannot tell which file of the input artifact is the disk image "+
		"(looked for one file qemu-img recognises as qcow2/vhdx/vmdk/..., else one raw file named *.raw or *.img): %s",
		strings.Join(listed, ", "))
}
