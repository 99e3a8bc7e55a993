package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"strings"
)

// AppendLineResult is the document of `append-line`.
type AppendLineResult struct {
	Header
	File string `json:"file"`
	// Appended is true when the line was added; AlreadyPresent when the
	// file already had it; Skipped when --if-exists named a missing path.
	Appended       bool `json:"appended,omitempty"`
	AlreadyPresent bool `json:"already_present,omitempty"`
	Skipped        bool `json:"skipped,omitempty"`
}

// runAppendLine appends one line (given base64-encoded, so cmd.exe never
// interprets its %, > or quotes) to a text file with CRLF line endings,
// creating the file when absent, unless the file already has that line.
// With --if-exists, it does nothing when that path is missing. Used for
// hooks such as SetupComplete.cmd that other tools also write.
func runAppendLine(_ context.Context, e *env, args []string, flags map[string]string) (document, *usageError) {
	file := args[0]
	b, err := base64.StdEncoding.DecodeString(args[1])
	line := strings.TrimRight(string(b), "\r\n")
	if err != nil || line == "" || strings.ContainsAny(line, "\r\n") {
		return nil, usagef("the line must be one non-empty line, base64-encoded")
	}
	res := &AppendLineResult{File: file}
	files := e.sys.Files()
	if cond, ok := flags["if-exists"]; ok {
		if _, err := files.Stat(cond); errors.Is(err, fs.ErrNotExist) {
			res.Skipped, res.OK = true, true
			return res, nil
		} else if err != nil {
			res.fail("checking %s: %v", cond, err)
			return res, nil
		}
	}
	cur, err := readFile(files, file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		res.fail("reading %s: %v", file, err)
		return res, nil
	}
	for _, l := range strings.Split(string(cur), "\n") {
		if strings.TrimSpace(l) == strings.TrimSpace(line) {
			res.AlreadyPresent, res.OK = true, true
			return res, nil
		}
	}
	add := line + "\r\n"
	if len(cur) > 0 && cur[len(cur)-1] != '\n' {
		add = "\r\n" + add
	}
	if d := winDir(file); d != "" {
		if err := files.MkdirAll(d); err != nil {
			res.fail("creating %s: %v", d, err)
			return res, nil
		}
	}
	w, err := files.Append(file)
	if err != nil {
		res.fail("opening %s: %v", file, err)
		return res, nil
	}
	_, err = w.Write([]byte(add))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		res.fail("appending to %s: %v", file, err)
		return res, nil
	}
	res.Appended, res.OK = true, true
	e.progress("appended a line to %s", file)
	return res, nil
}
