package qemuvm

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CopyFile copies src to dst, which must not exist yet, with mode perm; a
// partial copy is removed.
func CopyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// CopyTree copies the directories and regular files under src to dst
// (created when missing), private to the owner as TPM state must be.
// Sockets and the like belong to a stopped swtpm and are skipped.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			return CopyFile(p, target, 0o600)
		}
		return nil
	})
}
