package agent

import (
	"context"
	"errors"
	"io/fs"
)

// RemoveResult is the document of `remove`.
type RemoveResult struct {
	Header
	Path string `json:"path"`
	// Removed is false when the path did not exist.
	Removed bool `json:"removed"`
}

// runRemove removes a file or a directory tree; a missing path is not an
// error. The plugin uses it to take delivered packages out of the image.
func runRemove(_ context.Context, e *env, args []string, _ map[string]string) (document, *usageError) {
	p := args[0]
	if len(p) < 4 || p[1] != ':' || p[2] != '\\' {
		return nil, usagef("path %q: want an absolute path below a drive root, such as C:\\ProgramData\\winbake\\updates", p)
	}
	res := &RemoveResult{Path: p}
	files := e.sys.Files()
	if _, err := files.Stat(p); errors.Is(err, fs.ErrNotExist) {
		res.OK = true
		return res, nil
	}
	if err := removeAll(files, p); err != nil {
		res.fail("removing %s: %v", p, err)
		return res, nil
	}
	res.Removed, res.OK = true, true
	return res, nil
}
