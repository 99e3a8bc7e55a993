package winsim

import (
	"io"
	"sync"
)

// stream is an unbounded in-memory pipe: writes never block, reads block
// until data arrives or the stream is closed. The simulated processes write
// their output into streams so that a process never waits for a reader
// (WinRM buffers output the same way until the client's next Receive).
type stream struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	closed bool
	err    error // returned to writers after close
}

func newStream() *stream {
	s := &stream{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.ErrClosedPipe
	}
	s.buf = append(s.buf, p...)
	s.cond.Broadcast()
	return len(p), nil
}

func (s *stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 && !s.closed {
		s.cond.Wait()
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	if len(s.buf) == 0 {
		s.buf = nil
	}
	return n, nil
}

// Close ends the stream: readers get the remaining bytes, then EOF.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cond.Broadcast()
	return nil
}

// discard drops unread bytes and closes the stream.
func (s *stream) discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = nil
	s.closed = true
	s.cond.Broadcast()
}

// output is a process's stdout and stderr as one queue of writes, in the
// order they were made: read as a whole (ReadOutput, wsman.OrderedOutput)
// it keeps that order across the two streams, which two pipes read
// separately cannot. Like stream, writes never block. Consecutive writes
// to the same stream not yet read merge, as in a pipe.
type output struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks []outChunk
	closed bool
}

type outChunk struct {
	stream int
	data   []byte
}

func newOutput() *output {
	o := &output{}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// writer is the process's side of one stream.
func (o *output) writer(stream int) io.Writer { return outWriter{o, stream} }

// reader reads one stream only (wsman.Process's Stdout and Stderr), taking
// that stream's chunks out of the queue.
func (o *output) reader(stream int) io.Reader { return outReader{o, stream} }

type outWriter struct {
	o      *output
	stream int
}

func (w outWriter) Write(p []byte) (int, error) {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, io.ErrClosedPipe
	}
	if len(p) == 0 {
		return 0, nil
	}
	if n := len(o.chunks); n > 0 && o.chunks[n-1].stream == w.stream {
		o.chunks[n-1].data = append(o.chunks[n-1].data, p...)
	} else {
		o.chunks = append(o.chunks, outChunk{stream: w.stream, data: append([]byte(nil), p...)})
	}
	o.cond.Broadcast()
	return len(p), nil
}

type outReader struct {
	o      *output
	stream int
}

func (r outReader) Read(p []byte) (int, error) {
	o := r.o
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		for i := range o.chunks {
			if o.chunks[i].stream == r.stream {
				return o.takeLocked(i, p), nil
			}
		}
		if o.closed {
			return 0, io.EOF
		}
		o.cond.Wait()
	}
}

// ReadOutput reads the oldest output: wsman.OrderedOutput.
func (o *output) ReadOutput(p []byte) (stream int, n int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.chunks) == 0 {
		if o.closed {
			return 0, 0, io.EOF
		}
		o.cond.Wait()
	}
	stream = o.chunks[0].stream
	return stream, o.takeLocked(0, p), nil
}

// takeLocked copies chunk i into p and removes what was copied.
func (o *output) takeLocked(i int, p []byte) int {
	c := &o.chunks[i]
	n := copy(p, c.data)
	c.data = c.data[n:]
	if len(c.data) == 0 {
		o.chunks = append(o.chunks[:i], o.chunks[i+1:]...)
	}
	return n
}

// Close ends both streams: readers get what is left, then EOF.
func (o *output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.cond.Broadcast()
	return nil
}
