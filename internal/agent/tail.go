package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
)

// Limits of `tail --max`.
const (
	DefaultTailMax = 256 << 10
	MaxTailMax     = 16 << 20
)

// TailResult is the document of `tail`: the bytes of a file from an offset,
// for streaming a growing log (DISM's) over several WinRM commands:
//
//	offset := 0
//	loop: tail <file> --from <offset>; append data; offset = next_offset
type TailResult struct {
	Header
	// Path is the file as given.
	Path string `json:"path"`
	// Exists is false when the file does not exist (yet): "ok" is true, Data
	// empty and NextOffset equals --from, so the caller simply polls again.
	Exists bool `json:"exists"`
	// From is the offset Data starts at: --from, or 0 after a reset.
	From int64 `json:"from"`
	// NextOffset is the offset to pass as --from next time (From+len(Data)).
	NextOffset int64 `json:"next_offset"`
	// Size is the file's size when it was read.
	Size int64 `json:"size"`
	// EOF is true when Data reaches Size; false when --max cut it short.
	EOF bool `json:"eof"`
	// Reset is true when the file was shorter than --from (replaced or
	// truncated): Data is then read from offset 0.
	Reset bool `json:"reset,omitempty"`
	// Data is the raw bytes, base64 in JSON (logs are not reliably UTF-8,
	// and offsets count bytes).
	Data []byte `json:"data"`
}

func runTail(_ context.Context, e *env, args []string, flags map[string]string) (document, *usageError) {
	path := args[0]
	var from int64
	if s, ok := flags["from"]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, &usageError{msg: fmt.Sprintf("--from %q: want a byte offset >= 0", s), flags: true}
		}
		from = n
	}
	limit := int64(DefaultTailMax)
	if s, ok := flags["max"]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > MaxTailMax {
			return nil, &usageError{msg: fmt.Sprintf("--max %q: want a byte count from 1 to %d", s, MaxTailMax), flags: true}
		}
		limit = n
	}
	res := &TailResult{Path: path, From: from, NextOffset: from, Data: []byte{}}
	files := e.sys.Files()
	fi, err := files.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		res.OK = true
		return res, nil
	}
	if err != nil {
		res.fail("%s: %v", path, err)
		return res, nil
	}
	if fi.IsDir() {
		res.fail("%s is a directory", path)
		return res, nil
	}
	res.Exists = true
	res.Size = fi.Size()
	if from > res.Size {
		res.Reset = true
		res.From = 0
	}
	f, err := files.Open(path)
	if err != nil {
		res.fail("opening %s: %v", path, err)
		return res, nil
	}
	defer f.Close()
	if err := skip(f, res.From); err != nil {
		res.fail("seeking %s to %d: %v", path, res.From, err)
		return res, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		res.fail("reading %s: %v", path, err)
		return res, nil
	}
	res.Data = data
	res.NextOffset = res.From + int64(len(data))
	if res.NextOffset > res.Size { // grew since Stat
		res.Size = res.NextOffset
	}
	res.EOF = res.NextOffset >= res.Size
	res.OK = true
	return res, nil
}

// skip moves r forward by n bytes, seeking when it can.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekStart)
		return err
	}
	got, err := io.CopyN(io.Discard, r, n)
	if err == io.EOF && got < n {
		return fmt.Errorf("file ended at %d", got)
	}
	return err
}
