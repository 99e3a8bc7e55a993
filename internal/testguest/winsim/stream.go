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
