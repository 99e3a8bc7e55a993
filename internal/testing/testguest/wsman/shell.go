package wsman

import (
	"io"
	"sync"
	"time"
)

type envVar struct{ name, value string }

// shell is an open cmd shell (one rsp:Shell resource).
type shell struct {
	id         string
	owner      string
	clientIP   string
	codepage   int
	noProfile  bool
	workDir    string
	env        []envVar
	idle       time.Duration
	inStreams  string
	outStreams string

	// guarded by Server.mu
	lastActivity time.Time
	inflight     int
	commands     map[string]*command
	order        []*command
	gone         chan struct{} // closed when deleted, discarded or expired
}

func (sh *shell) environment() map[string]string {
	if len(sh.env) == 0 {
		return nil
	}
	m := make(map[string]string, len(sh.env))
	for _, v := range sh.env {
		m[v.name] = v.value
	}
	return m
}

const (
	streamStdout = StreamStdout
	streamStderr = StreamStderr
)

var streamNames = [2]string{"stdout", "stderr"}

type chunk struct {
	stream int
	data   []byte
}

// command is a process started by a Command request, with its output
// queued in production order until Receive requests take it.
type command struct {
	id    string
	shell *shell
	proc  Process

	recvMu sync.Mutex // one Receive at a time

	mu        sync.Mutex
	queue     []chunk
	queued    int
	maxQueued int
	eof       [2]bool
	exited    bool
	exitCode  uint32
	doneSent  bool
	discarded bool
	changed   chan struct{} // closed and replaced on every change
	room      *sync.Cond    // signalled when the queue shrinks

	stdinMu     sync.Mutex
	stdinQueue  [][]byte
	stdinClose  bool
	stdinActive bool
	stdinWake   *sync.Cond
}

func newCommand(id string, sh *shell, proc Process, maxQueued int) *command {
	c := &command{id: id, shell: sh, proc: proc, maxQueued: maxQueued, changed: make(chan struct{})}
	c.room = sync.NewCond(&c.mu)
	c.stdinWake = sync.NewCond(&c.stdinMu)
	return c
}

// notify wakes every waiter; c.mu must be held.
func (c *command) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// complete reports that the process exited and both streams reached EOF;
// c.mu must be held.
func (c *command) complete() bool {
	return c.exited && c.eof[0] && c.eof[1]
}

// pump copies one output stream into the queue, keeping each read as a
// chunk, until EOF. It holds the process back (like a full pipe) while
// maxQueued bytes wait to be received.
func (c *command) pump(stream int, r io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		c.mu.Lock()
		for c.queued >= c.maxQueued && !c.discarded {
			c.room.Wait()
		}
		c.mu.Unlock()
		var n int
		var err error
		if r == nil {
			err = io.EOF
		} else {
			n, err = r.Read(buf)
		}
		c.mu.Lock()
		if n > 0 && !c.discarded {
			c.queue = append(c.queue, chunk{stream: stream, data: append([]byte(nil), buf[:n]...)})
			c.queued += n
			c.notify()
		}
		if err != nil {
			c.eof[stream] = true
			c.notify()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// pumpOrdered is pump for a Process with OrderedOutput: one reader for
// both streams, chunks queued in the order the process wrote them. A
// stream number other than StreamStdout and StreamStderr breaks the
// contract: it is reported and its bytes dropped.
func (c *command) pumpOrdered(r OrderedOutput, failf func(string, ...any)) {
	buf := make([]byte, 64<<10)
	for {
		c.mu.Lock()
		for c.queued >= c.maxQueued && !c.discarded {
			c.room.Wait()
		}
		c.mu.Unlock()
		stream, n, err := r.ReadOutput(buf)
		if n > 0 && stream != streamStdout && stream != streamStderr {
			failf("wsman: Process.ReadOutput returned stream %d", stream)
			n = 0
		}
		c.mu.Lock()
		if n > 0 && !c.discarded {
			c.queue = append(c.queue, chunk{stream: stream, data: append([]byte(nil), buf[:n]...)})
			c.queued += n
			c.notify()
		}
		if err != nil {
			c.eof = [2]bool{true, true}
			c.notify()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

func (c *command) wait() {
	code := c.proc.Wait()
	c.mu.Lock()
	c.exited = true
	c.exitCode = code
	c.notify()
	c.mu.Unlock()
}

// send queues stdin bytes for the process; end closes its stdin after them.
func (c *command) send(data []byte, end bool, start func(func())) {
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	if c.stdinClose {
		return
	}
	if len(data) > 0 {
		c.stdinQueue = append(c.stdinQueue, data)
	}
	if end {
		c.stdinClose = true
	}
	if !c.stdinActive {
		c.stdinActive = true
		start(c.stdinWriter)
	}
	c.stdinWake.Broadcast()
}

func (c *command) stdinWriter() {
	w := c.proc.Stdin()
	for {
		c.stdinMu.Lock()
		for len(c.stdinQueue) == 0 && !c.stdinClose {
			c.stdinWake.Wait()
		}
		if len(c.stdinQueue) == 0 && c.stdinClose {
			c.stdinMu.Unlock()
			if w != nil {
				_ = w.Close()
			}
			return
		}
		data := c.stdinQueue[0]
		c.stdinQueue = c.stdinQueue[1:]
		c.stdinMu.Unlock()
		if w != nil {
			if _, err := w.Write(data); err != nil {
				c.stdinMu.Lock()
				c.stdinQueue = nil
				c.stdinClose = true
				c.stdinMu.Unlock()
				_ = w.Close()
				return
			}
		}
	}
}

// discard forgets the command: queued output is dropped, the pumps keep
// draining the process until EOF, and a stdin writer stops.
func (c *command) discard() {
	c.mu.Lock()
	c.discarded = true
	c.queue = nil
	c.queued = 0
	c.room.Broadcast()
	c.notify()
	running := !c.exited
	c.mu.Unlock()
	c.stdinMu.Lock()
	c.stdinQueue = nil
	c.stdinClose = true
	c.stdinWake.Broadcast()
	c.stdinMu.Unlock()
	if running {
		c.proc.Terminate()
	}
}
