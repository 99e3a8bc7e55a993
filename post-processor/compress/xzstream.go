package compress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// xzZeroUnit is the run of zeros the xz writer emits as one precomputed xz
// stream. The xz format allows concatenated streams (xz -d, liblzma and
// Python's lzma read them as one), so a disk is written as xz streams of
// its data runs, compressed by `xz -T0`, and of whole zero units, copied.
const xzZeroUnit = 64 << 20

// xzStream writes the guest bytes of layout as concatenated xz streams.
type xzStream struct {
	level    int
	layout   *diskLayout
	progress func(n int64)
}

func (x *xzStream) args() []string {
	return []string{"--compress", "--stdout", "--threads=0", fmt.Sprintf("-%d", x.level)}
}

func (x *xzStream) write(ctx context.Context, dst io.Writer) error {
	buf := make([]byte, xzZeroUnit)
	var zeroStream []byte
	var run *xzProcess
	defer func() {
		if run != nil {
			run.abort()
		}
	}()
	for off := int64(0); off < x.layout.size; off += xzZeroUnit {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(xzZeroUnit, x.layout.size-off))
		var err error
		zero := n == xzZeroUnit && !x.layout.hasData(off, int64(n))
		if !zero {
			if zero, err = x.layout.readAt(buf[:n], off); err != nil {
				return err
			}
		}
		if zero && n == xzZeroUnit {
			if run != nil {
				err := run.finish()
				run = nil
				if err != nil {
					return err
				}
			}
			if zeroStream == nil {
				clear(buf) // a hole is not read into buf
				if zeroStream, err = x.compressZeros(ctx, buf[:n]); err != nil {
					return err
				}
			}
			if _, err := dst.Write(zeroStream); err != nil {
				return err
			}
		} else {
			if run == nil {
				if run, err = startXz(ctx, x.args(), dst); err != nil {
					return err
				}
			}
			if _, err := run.stdin.Write(buf[:n]); err != nil {
				return run.failed(err)
			}
		}
		if x.progress != nil {
			x.progress(int64(n))
		}
	}
	if run != nil {
		err := run.finish()
		run = nil
		return err
	}
	return nil
}

// compressZeros returns the xz stream of zeros (all-zero bytes).
func (x *xzStream) compressZeros(ctx context.Context, zeros []byte) ([]byte, error) {
	var out bytes.Buffer
	err := command{name: xzCommand, args: x.args(), stdin: bytes.NewReader(zeros), stdout: &out}.run(ctx)
	return out.Bytes(), err
}

// xzProcess is one running `xz` writing a stream to the output.
type xzProcess struct {
	ctx    context.Context
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
}

func startXz(ctx context.Context, args []string, dst io.Writer) (*xzProcess, error) {
	cmd := exec.CommandContext(ctx, xzCommand, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout = dst
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", xzCommand, err)
	}
	return &xzProcess{ctx: ctx, cmd: cmd, stdin: stdin, stderr: stderr}, nil
}

// finish closes xz's input and waits for it to write the end of its stream.
func (p *xzProcess) finish() error {
	_ = p.stdin.Close()
	return p.failed(p.cmd.Wait())
}

// failed turns an error of the xz run into one that says why.
func (p *xzProcess) failed(err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := p.ctx.Err(); ctxErr != nil {
		p.abort()
		return ctxErr
	}
	if p.cmd.ProcessState == nil {
		// A write failed while xz runs: collect its exit status first.
		_ = p.stdin.Close()
		if werr := p.cmd.Wait(); werr != nil {
			err = werr
		}
	}
	msg := strings.TrimSpace(p.stderr.String())
	if msg == "" {
		return fmt.Errorf("%s %s: %w", xzCommand, strings.Join(p.cmd.Args[1:], " "), err)
	}
	return fmt.Errorf("%s %s: %w: %s", xzCommand, strings.Join(p.cmd.Args[1:], " "), err, msg)
}

// abort kills xz and waits for it.
func (p *xzProcess) abort() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.stdin.Close()
	_ = p.cmd.Wait()
}
