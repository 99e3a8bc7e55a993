package setup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CDViewLimit bounds the data CopyCDView copies: Nova's config drives
// are at most 64 MiB (nova/virt/configdrive.py CONFIGDRIVESIZE_BYTES), and
// the stand-in runs in 512 MB.
const CDViewLimit = 64 << 20

// CopyCDView copies into dir (created) the files and folders Windows'
// CDFS finds on the CD, and only those: a folder its path table lacks is
// left out and logged as not found, with CDFS's reason. Programs of the
// simulated Windows that read a CD by path (cloudbase-init's
// ConfigDriveService) read this copy. A CD holding more than CDViewLimit
// bytes is refused, and nothing is left in dir on failure.
func CopyCDView(m Medium, dir string, logf func(format string, args ...any)) (err error) {
	if m.CD == nil {
		return fmt.Errorf("%s is not a CD", m.Where())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	var total int64
	var walk func(rel, local string) error
	walk = func(rel, local string) error {
		ents, err := m.ReadDir(rel)
		if err != nil {
			return err
		}
		for _, e := range ents {
			childRel := strings.TrimPrefix(rel+`\`+e.Name, `\`)
			child := filepath.Join(local, e.Name)
			// Directory listings come from the directory's records; opening
			// goes through the path table (a folder) or the records (a file).
			found, err := m.Stat(childRel)
			if err != nil {
				if !notFoundOnly(err) {
					return err
				}
				logf("%v", err)
				continue
			}
			if found.IsDir {
				if err := os.Mkdir(child, 0o755); err != nil {
					return err
				}
				if err := walk(childRel, child); err != nil {
					return err
				}
				continue
			}
			if total += found.Size; total > CDViewLimit {
				return fmt.Errorf("%s holds more than the %d MiB the stand-in copies for programs that read it; not modelled", m.Where(), CDViewLimit>>20)
			}
			if err := copyFromMedium(child, &m, childRel); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("", dir)
}
