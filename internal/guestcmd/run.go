// Package guestcmd runs winbake's commands in the guest over a Packer
// communicator, each within a bound and stopped by the build's context.
//
// Packer's WinRM communicator runs a command to its end inside Start and
// checks the context only between two Receive requests, which never come
// when the guest stops answering; served to a provisioner over Packer's RPC
// it gets no context at all. Run therefore waits for the command on a
// goroutine of its own and returns when the bound passes or the context
// ends, whatever the communicator does. When the communicator is a Guard
// (the builders' and post-processors' own WinRM connection), the requests
// still in flight are aborted as well, so that the WinRM client signals the
// command to stop and deletes its shell.
package guestcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Command is one command line run in the guest.
type Command struct {
	// Line is the command line, as the communicator runs it (cmd.exe /c).
	Line string
	// What names the command in errors ("winbake-agent install").
	What string
	// Timeout bounds the command from its start to its exit. It must be
	// set: every command has a bound.
	Timeout time.Duration
	// Limit says where Timeout comes from (a setting such as
	// "restart_timeout", or why a fixed bound suffices) for the error.
	Limit string
	// Stdout and Stderr, when set, receive the output as it arrives, until
	// Run returns; the Result holds it too.
	Stdout, Stderr io.Writer
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr string
	ExitStatus     int
}

// TimeoutError is a command that did not end within its bound; it was
// abandoned (and stopped, on a Guard).
type TimeoutError struct {
	What    string
	Timeout time.Duration
	Limit   string
}

func (e *TimeoutError) Error() string {
	s := fmt.Sprintf("%s did not finish within %s", e.What, e.Timeout)
	if e.Limit != "" {
		s += " (" + e.Limit + ")"
	}
	return s + "; winbake stopped waiting for it"
}

// IsTimeout reports whether err is, or wraps, a TimeoutError.
func IsTimeout(err error) bool {
	var t *TimeoutError
	return errors.As(err, &t)
}

// Aborter is implemented by communicators whose requests in flight can be
// aborted (Guard). Abort makes commands running now end soon, their shells
// deleted; later commands are not affected.
type Aborter interface {
	Abort()
	// Settle waits up to d for the aborted commands to end and reports
	// whether they did.
	Settle(d time.Duration) bool
}

// settleTime is how long Run waits, after aborting a command on an
// Aborter, for the WinRM client to signal it and delete its shell.
const settleTime = 30 * time.Second

// Run runs c over comm and returns its output and exit status. It returns
// a *TimeoutError when c.Timeout passes first and the context's error
// (wrapped, naming the command) when ctx ends first; an error starting the
// command is returned as the communicator reported it, wrapped.
func Run(ctx context.Context, comm packersdk.Communicator, c Command) (Result, error) {
	if c.Timeout <= 0 {
		return Result{}, fmt.Errorf("%s: no bound was given for the command", c.What)
	}
	runCtx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	stdout, stderr := newGate(c.Stdout), newGate(c.Stderr)
	cmd := &packersdk.RemoteCmd{Command: c.Line, Stdout: stdout, Stderr: stderr}
	type ended struct {
		status int
		err    error
	}
	done := make(chan ended, 1)
	go func() {
		if err := comm.Start(runCtx, cmd); err != nil {
			// No exit status: RemoteCmd.ExitStatus would wait for one
			// Packer's RPC proxy may never deliver.
			done <- ended{-1, err}
			return
		}
		done <- ended{cmd.Wait(), nil}
	}()
	select {
	case e := <-done:
		err := e.err
		r := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitStatus: e.status}
		if err != nil {
			if ctx.Err() != nil {
				return r, fmt.Errorf("%s: %w", c.What, ctx.Err())
			}
			return r, fmt.Errorf("%s: %w", c.What, err)
		}
		return r, nil
	case <-runCtx.Done():
	}
	stdout.close()
	stderr.close()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitStatus: -1}
	abandon(comm, func() { <-done })
	if ctx.Err() != nil {
		return r, fmt.Errorf("%s: %w", c.What, ctx.Err())
	}
	return r, &TimeoutError{What: c.What, Timeout: c.Timeout, Limit: c.Limit}
}

// abandon aborts what comm still has in flight and waits briefly for the
// command to end, so that its shell is gone when Run returns. A
// communicator that cannot abort (Packer's RPC proxy in a provisioner) is
// left to finish on its own.
func abandon(comm packersdk.Communicator, wait func()) {
	a, ok := comm.(Aborter)
	if !ok {
		return
	}
	a.Abort()
	ended := make(chan struct{})
	go func() { wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(settleTime):
	}
	a.Settle(settleTime)
}

// Upload copies r to path in the guest within timeout, returning when ctx
// ends first. Packer's Upload takes no context; an upload that is given up
// on is aborted on a Guard and otherwise left to fail on its own.
func Upload(ctx context.Context, comm packersdk.Communicator, path string, r io.Reader, fi *os.FileInfo, timeout time.Duration, limit string) error {
	what := "uploading " + path
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- comm.Upload(path, r, fi) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case <-runCtx.Done():
	}
	abandon(comm, func() { <-done }) //nolint:errcheck // the command was abandoned; its end, not its error, matters
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return &TimeoutError{What: what, Timeout: timeout, Limit: limit}
}

// gate collects a stream and forwards it until closed: a command that is
// abandoned may still write from the communicator's goroutines.
type gate struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	next   io.Writer
	closed bool
}

func newGate(next io.Writer) *gate { return &gate{next: next} }

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	g.buf.Write(p)
	if g.next != nil {
		_, _ = g.next.Write(p)
	}
	return len(p), nil
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}
