package common

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RemoveArtifactFiles removes the files a build wrote into its output
// directory, then the directories under dir (dir included) that this left
// empty. Other files in dir (a post-processor's output, the user's own)
// stay, and with them the directories that hold them.
func RemoveArtifactFiles(dir string, files []string) error {
	var errs []error
	dirs := map[string]bool{}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		for d := filepath.Dir(f); isWithin(dir, d); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dirs[filepath.Clean(dir)] = true
	// Deepest first, so a directory is empty by the time it is tried.
	ordered := make([]string, 0, len(dirs))
	for d := range dirs {
		ordered = append(ordered, d)
	}
	sort.Slice(ordered, func(i, j int) bool { return len(ordered[i]) > len(ordered[j]) })
	for _, d := range ordered {
		if entries, err := os.ReadDir(d); err == nil && len(entries) == 0 {
			if err := os.Remove(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// isWithin reports whether d is dir or lies below it.
func isWithin(dir, d string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(d))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
