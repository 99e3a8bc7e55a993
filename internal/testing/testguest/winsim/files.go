package winsim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// winPath is an absolute Windows path: a drive letter and its components.
type winPath struct {
	drive byte // upper case
	parts []string
}

func (p winPath) String() string {
	if len(p.parts) == 0 {
		return string(p.drive) + `:\`
	}
	return string(p.drive) + `:\` + strings.Join(p.parts, `\`)
}

func (p winPath) base() string {
	if len(p.parts) == 0 {
		return ""
	}
	return p.parts[len(p.parts)-1]
}

func (p winPath) parent() winPath {
	if len(p.parts) == 0 {
		return p
	}
	return winPath{drive: p.drive, parts: p.parts[:len(p.parts)-1]}
}

func (p winPath) join(name string) winPath {
	parts := append(append([]string(nil), p.parts...), name)
	return winPath{drive: p.drive, parts: parts}
}

// equal compares case-insensitively, as NTFS does for Windows callers.
func (p winPath) equal(q winPath) bool {
	return strings.EqualFold(p.String(), q.String())
}

// parseWinPath resolves a Windows path against the working directory cwd
// (an absolute path, or "" when relative paths are an error): `/` is a
// separator, `.` and `..` are resolved, trailing dots and spaces of a
// component are dropped, and `\\?\` prefixes are accepted.
func parseWinPath(s, cwd string) (winPath, error) {
	orig := s
	s = strings.ReplaceAll(s, "/", `\`)
	s = strings.TrimPrefix(s, `\\?\`)
	var base winPath
	switch {
	case len(s) >= 2 && s[1] == ':' && isLetter(s[0]):
		base.drive = upper(s[0])
		s = s[2:]
		if !strings.HasPrefix(s, `\`) {
			// Drive-relative: relative to cwd when it is on that drive.
			if c, err := parseWinPath(cwd, ""); err == nil && c.drive == base.drive {
				base = c
			}
		}
	case strings.HasPrefix(s, `\\`):
		return winPath{}, &fs.PathError{Op: "open", Path: orig, Err: ErrorInvalidName}
	case strings.HasPrefix(s, `\`):
		c, err := parseWinPath(cwd, "")
		if err != nil {
			return winPath{}, &fs.PathError{Op: "open", Path: orig, Err: ErrorInvalidName}
		}
		base.drive = c.drive
	default:
		if cwd == "" {
			return winPath{}, &fs.PathError{Op: "open", Path: orig, Err: fmt.Errorf("%q is not an absolute Windows path", orig)}
		}
		c, err := parseWinPath(cwd, "")
		if err != nil {
			return winPath{}, err
		}
		base = c
	}
	parts := append([]string(nil), base.parts...)
	for _, c := range strings.Split(s, `\`) {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
			continue
		}
		c = strings.TrimRight(c, ". ")
		if c == "" {
			continue
		}
		if strings.ContainsAny(c, `<>:"|?*`) || strings.IndexFunc(c, func(r rune) bool { return r < 32 }) >= 0 {
			return winPath{}, &fs.PathError{Op: "open", Path: orig, Err: ErrorInvalidName}
		}
		parts = append(parts, c)
	}
	return winPath{drive: base.drive, parts: parts}, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// Files is the simulated file system, kept under StateDir/fs/<drive>/ on
// the host. Names are case-insensitive and case-preserving: a lookup
// matches an existing entry whatever its case, a new entry keeps the case
// it was created with. It implements agent.Files; paths must be absolute.
type Files struct {
	root string // StateDir/fs
	cwd  string // for relative paths; "" in the agent.Files view
}

func (f *Files) withCwd(cwd string) *Files { return &Files{root: f.root, cwd: cwd} }

// resolved is a path mapped onto the host.
type resolved struct {
	win    winPath // with the case of existing entries
	host   string
	exists bool
	// parentExists is false when a directory on the way is missing (the
	// difference between "file" and "path" not found).
	parentExists bool
}

func (f *Files) resolve(p string) (resolved, error) {
	wp, err := parseWinPath(p, f.cwd)
	if err != nil {
		return resolved{}, err
	}
	return f.resolveWin(wp)
}

func (f *Files) resolveWin(wp winPath) (resolved, error) {
	host := filepath.Join(f.root, string(wp.drive))
	if st, err := os.Stat(host); err != nil || !st.IsDir() {
		return resolved{}, &fs.PathError{Op: "open", Path: wp.String(), Err: ErrorPathNotFound}
	}
	r := resolved{win: winPath{drive: wp.drive}, exists: true, parentExists: true}
	for i, c := range wp.parts {
		name := c
		if r.exists {
			found := ""
			if entries, err := os.ReadDir(host); err == nil {
				for _, e := range entries {
					if e.Name() == c {
						found = c
						break
					}
					if found == "" && strings.EqualFold(e.Name(), c) {
						found = e.Name()
					}
				}
			}
			if found != "" {
				name = found
			} else {
				r.exists = false
				r.parentExists = i == len(wp.parts)-1
			}
		}
		host = filepath.Join(host, name)
		r.win.parts = append(r.win.parts, name)
	}
	r.host = host
	return r, nil
}

func notFound(op string, r resolved) error {
	if r.parentExists {
		return &fs.PathError{Op: op, Path: r.win.String(), Err: ErrorFileNotFound}
	}
	return &fs.PathError{Op: op, Path: r.win.String(), Err: ErrorPathNotFound}
}

// hostErr turns a host error into the Windows error for path.
func hostErr(op string, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return &fs.PathError{Op: op, Path: path, Err: ErrorPathNotFound}
	case errors.Is(err, fs.ErrExist):
		return &fs.PathError{Op: op, Path: path, Err: ErrorAlreadyExists}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: op, Path: path, Err: pe.Err}
	}
	return err
}

// Abs returns the absolute form of p with the case of existing entries.
func (f *Files) Abs(p string) (string, error) {
	r, err := f.resolve(p)
	if err != nil {
		return "", err
	}
	return r.win.String(), nil
}

func (f *Files) Stat(p string) (fs.FileInfo, error) {
	r, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	if !r.exists {
		return nil, notFound("stat", r)
	}
	st, err := os.Stat(r.host)
	return st, hostErr("stat", r.win.String(), err)
}

// exists reports whether p names a file (dir false) or directory (dir true).
func (f *Files) exists(p string) (exists, dir bool) {
	st, err := f.Stat(p)
	if err != nil {
		return false, false
	}
	return true, st.IsDir()
}

func (f *Files) Open(p string) (io.ReadCloser, error) {
	r, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	if !r.exists {
		return nil, notFound("open", r)
	}
	if st, err := os.Stat(r.host); err == nil && st.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: r.win.String(), Err: ErrorAccessDenied}
	}
	fh, err := os.Open(r.host)
	return fh, hostErr("open", r.win.String(), err)
}

// ReadFile returns the whole content of p.
func (f *Files) ReadFile(p string) ([]byte, error) {
	rc, err := f.Open(p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// WriteFile creates or truncates p (and its missing parents) with data.
func (f *Files) WriteFile(p string, data []byte) error {
	w, err := f.Create(p)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Create creates or truncates a file, creating missing parent directories.
func (f *Files) Create(p string) (io.WriteCloser, error) {
	r, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	if len(r.win.parts) == 0 {
		return nil, &fs.PathError{Op: "create", Path: r.win.String(), Err: ErrorAccessDenied}
	}
	if err := f.mkdirAll(r.win.parent()); err != nil {
		return nil, err
	}
	return f.openWrite(r.win, os.O_CREATE|os.O_TRUNC|os.O_WRONLY)
}

// CreateNew creates or truncates a file whose parent must exist, as
// CreateFile does (cmd's `>`, PowerShell's OpenWrite).
func (f *Files) CreateNew(p string) (io.WriteCloser, error) {
	r, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	return f.openWrite(r.win, os.O_CREATE|os.O_TRUNC|os.O_WRONLY)
}

// Append opens a file for appending, creating it when absent; its
// directory must exist.
func (f *Files) Append(p string) (io.WriteCloser, error) {
	r, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	return f.openWrite(r.win, os.O_CREATE|os.O_APPEND|os.O_WRONLY)
}

func (f *Files) openWrite(wp winPath, flag int) (io.WriteCloser, error) {
	r, err := f.resolveWin(wp)
	if err != nil {
		return nil, err
	}
	if len(r.win.parts) == 0 {
		return nil, &fs.PathError{Op: "open", Path: r.win.String(), Err: ErrorAccessDenied}
	}
	if !r.exists && !r.parentExists {
		return nil, notFound("open", r)
	}
	if r.exists {
		if st, err := os.Stat(r.host); err == nil && st.IsDir() {
			return nil, &fs.PathError{Op: "open", Path: r.win.String(), Err: ErrorAccessDenied}
		}
	} else if st, err := os.Stat(filepath.Dir(r.host)); err != nil || !st.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: r.win.String(), Err: ErrorPathNotFound}
	}
	fh, err := os.OpenFile(r.host, flag, 0o644)
	return fh, hostErr("open", r.win.String(), err)
}

// ReadDir lists a directory in NTFS enumeration order: case-insensitively
// sorted.
func (f *Files) ReadDir(p string) ([]fs.DirEntry, error) {
	r, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	if !r.exists {
		return nil, notFound("readdir", r)
	}
	if st, err := os.Stat(r.host); err != nil || !st.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: r.win.String(), Err: ErrorDirectory}
	}
	entries, err := os.ReadDir(r.host)
	if err != nil {
		return nil, hostErr("readdir", r.win.String(), err)
	}
	sort.SliceStable(entries, func(i, j int) bool {
		return strings.ToUpper(entries[i].Name()) < strings.ToUpper(entries[j].Name())
	})
	return entries, nil
}

func (f *Files) MkdirAll(p string) error {
	wp, err := parseWinPath(p, f.cwd)
	if err != nil {
		return err
	}
	return f.mkdirAll(wp)
}

func (f *Files) mkdirAll(wp winPath) error {
	r, err := f.resolveWin(wp)
	if err != nil {
		return err
	}
	if r.exists {
		st, err := os.Stat(r.host)
		if err != nil {
			return hostErr("mkdir", r.win.String(), err)
		}
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: r.win.String(), Err: ErrorAlreadyExists}
		}
		return nil
	}
	// Create component by component so that existing entries keep their case.
	cur := winPath{drive: wp.drive}
	for _, c := range wp.parts {
		cur = cur.join(c)
		rc, err := f.resolveWin(cur)
		if err != nil {
			return err
		}
		if rc.exists {
			st, err := os.Stat(rc.host)
			if err != nil {
				return hostErr("mkdir", rc.win.String(), err)
			}
			if !st.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: rc.win.String(), Err: ErrorPathNotFound}
			}
			cur = rc.win
			continue
		}
		if err := os.Mkdir(rc.host, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return hostErr("mkdir", rc.win.String(), err)
		}
		cur = rc.win
	}
	return nil
}

// Mkdir creates one directory whose parent must exist.
func (f *Files) Mkdir(p string) error {
	r, err := f.resolve(p)
	if err != nil {
		return err
	}
	if r.exists {
		return &fs.PathError{Op: "mkdir", Path: r.win.String(), Err: ErrorAlreadyExists}
	}
	if !r.parentExists {
		return notFound("mkdir", r)
	}
	return hostErr("mkdir", r.win.String(), os.Mkdir(r.host, 0o755))
}

// Remove deletes a file or an empty directory.
func (f *Files) Remove(p string) error {
	r, err := f.resolve(p)
	if err != nil {
		return err
	}
	if !r.exists {
		return notFound("remove", r)
	}
	if len(r.win.parts) == 0 {
		return &fs.PathError{Op: "remove", Path: r.win.String(), Err: ErrorAccessDenied}
	}
	if st, err := os.Stat(r.host); err == nil && st.IsDir() {
		entries, _ := os.ReadDir(r.host)
		if len(entries) > 0 {
			return &fs.PathError{Op: "remove", Path: r.win.String(), Err: ErrorDirNotEmpty}
		}
	}
	return hostErr("remove", r.win.String(), os.Remove(r.host))
}

// RemoveAll deletes p and everything below it; a missing p is no error.
func (f *Files) RemoveAll(p string) error {
	r, err := f.resolve(p)
	if err != nil {
		return err
	}
	if !r.exists {
		return nil
	}
	if len(r.win.parts) == 0 {
		return &fs.PathError{Op: "remove", Path: r.win.String(), Err: ErrorAccessDenied}
	}
	return hostErr("remove", r.win.String(), os.RemoveAll(r.host))
}

// walkFiles lists the files below dir, recursively, in enumeration order.
func (f *Files) walkFiles(dir string) ([]string, error) {
	entries, err := f.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	abs, _ := f.Abs(dir)
	var out []string
	for _, e := range entries {
		p := strings.TrimSuffix(abs, `\`) + `\` + e.Name()
		if e.IsDir() {
			sub, err := f.walkFiles(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		} else {
			out = append(out, p)
		}
	}
	return out, nil
}
