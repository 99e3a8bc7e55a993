package compress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Commands this post-processor runs. Tests may point them elsewhere.
var (
	qemuImgCommand = "qemu-img"
	xzCommand      = "xz"
)

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.buf)) }

// command describes one external command run.
type command struct {
	name   string
	args   []string
	stdin  io.Reader
	stdout io.Writer
	// progress, when set, receives the stdout lines (split on \r and \n)
	// instead of stdout.
	progress func(line string)
}

// run runs cmd and waits for it. When ctx ends the process is killed and the
// context's error is returned.
func (c command) run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = c.stdin
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr

	var stdoutPipe io.ReadCloser
	if c.progress != nil {
		var err error
		if stdoutPipe, err = cmd.StdoutPipe(); err != nil {
			return err
		}
	} else {
		cmd.Stdout = c.stdout
	}

	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s was not found on PATH: %w", c.name, err)
		}
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	if stdoutPipe != nil {
		sc := bufio.NewScanner(stdoutPipe)
		sc.Split(scanCROrLF)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				c.progress(line)
			}
		}
		// Drain whatever is left so the process never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdoutPipe)
	}
	err := cmd.Wait()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if err != nil {
		msg := stderr.String()
		if msg == "" {
			return fmt.Errorf("%s %s: %w", c.name, strings.Join(c.args, " "), err)
		}
		return fmt.Errorf("%s %s: %w: %s", c.name, strings.Join(c.args, " "), err, msg)
	}
	return nil
}

// scanCROrLF is a bufio.SplitFunc splitting on '\r' or '\n'.
func scanCROrLF(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// imageInfo is the part of `qemu-img info --output=json` used here.
type imageInfo struct {
	Filename        string `json:"filename"`
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	ActualSize      int64  `json:"actual-size"`
	BackingFilename string `json:"backing-filename"`
	Encrypted       bool   `json:"encrypted"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// qemuImgInfo runs `qemu-img info --output=json` on path (which must be
// absolute, so that qemu does not read a "proto:" prefix).
func qemuImgInfo(ctx context.Context, path string) (imageInfo, error) {
	var out bytes.Buffer
	err := command{
		name:   qemuImgCommand,
		args:   []string{"info", "--output=json", path},
		stdout: &out,
	}.run(ctx)
	if err != nil {
		return imageInfo{}, err
	}
	var info imageInfo
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return imageInfo{}, fmt.Errorf("reading qemu-img info output for %s: %w", path, err)
	}
	if info.Format == "" {
		return imageInfo{}, fmt.Errorf("qemu-img info reported no format for %s", path)
	}
	return info, nil
}

var qemuProgressRE = regexp.MustCompile(`^\(\s*([0-9.]+)/100%\)$`)

// percentReporter turns qemu-img's `-p` lines into a say() call at every
// tenth of the way.
func percentReporter(say func(pct int)) func(line string) {
	next := 10
	return func(line string) {
		m := qemuProgressRE.FindStringSubmatch(line)
		if m == nil {
			return
		}
		pct, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return
		}
		if int(pct) >= next {
			step := int(pct) / 10 * 10
			say(step)
			next = step + 10
		}
	}
}

// qemuImgConvert converts src (of format srcFmt) to dst in format dstFmt with
// the extra options opts, reporting progress through say.
func qemuImgConvert(ctx context.Context, src, srcFmt, dst, dstFmt string, opts []string, say func(pct int)) error {
	args := []string{"convert", "-p", "-f", srcFmt, "-O", dstFmt}
	args = append(args, opts...)
	args = append(args, src, dst)
	return command{
		name:     qemuImgCommand,
		args:     args,
		progress: percentReporter(say),
	}.run(ctx)
}
