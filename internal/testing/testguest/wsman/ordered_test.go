package wsman

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
)

// orderedHost runs every command as an orderedProc writing its script at
// once, with no pause between streams.
type orderedHost struct {
	t      *testing.T
	script []chunk
}

func (h *orderedHost) Start(context.Context, CommandRequest) (Process, error) {
	p := &orderedProc{t: h.t, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		for _, c := range h.script {
			p.mu.Lock()
			p.chunks = append(p.chunks, c)
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.closed = true
		p.cond.Broadcast()
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// orderedProc is a Process with OrderedOutput whose Stdout and Stderr
// must not be used.
type orderedProc struct {
	t      *testing.T
	mu     sync.Mutex
	cond   *sync.Cond
	chunks []chunk
	closed bool
	done   chan struct{}
}

type unusedReader struct{ t *testing.T }

func (r unusedReader) Read([]byte) (int, error) {
	r.t.Errorf("the server read Stdout or Stderr of a Process with OrderedOutput")
	return 0, io.EOF
}

func (p *orderedProc) Stdin() io.WriteCloser { return nil }
func (p *orderedProc) Stdout() io.Reader     { return unusedReader{p.t} }
func (p *orderedProc) Stderr() io.Reader     { return unusedReader{p.t} }
func (p *orderedProc) Wait() uint32          { <-p.done; return 3 }
func (p *orderedProc) Terminate()            {}

func (p *orderedProc) ReadOutput(b []byte) (int, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.chunks) == 0 {
		if p.closed {
			return 0, 0, io.EOF
		}
		p.cond.Wait()
	}
	c := p.chunks[0]
	n := copy(b, c.data)
	if n == len(c.data) {
		p.chunks = p.chunks[1:]
	} else {
		p.chunks[0].data = c.data[n:]
	}
	return c.stream, n, nil
}

// A Process with OrderedOutput has its output received in the order it
// wrote it, however close together its writes to the two streams are.
func TestOrderedOutputKeepsProductionOrder(t *testing.T) {
	t.Parallel()
	var script []chunk
	var want []string
	for i := 0; i < 50; i++ {
		st := []int{StreamStdout, StreamStderr}[i%2]
		text := strings.Repeat(string(rune('a'+i%26)), 1+i)
		script = append(script, chunk{stream: st, data: []byte(text)})
		want = append(want, streamNames[st]+":"+text)
	}
	s := New(&orderedHost{t: t, script: script}, Options{Users: map[string]string{testUser: testPassword}, Failf: t.Errorf})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newRawClient(t, s)
	for round := 0; round < 20; round++ {
		shellID := c.createShell()
		cmdID := c.command(shellID, "ordered")
		_, _, code, all := c.receiveAll(shellID, cmdID)
		var seq []string
		for _, res := range all {
			for _, it := range res.items {
				if !it.end {
					seq = append(seq, it.name+":"+string(it.data))
				}
			}
		}
		if code != "3" || strings.Join(seq, "|") != strings.Join(want, "|") {
			t.Fatalf("round %d: exit %s, streams %q\nwant %q", round, code, seq, want)
		}
	}
}
