package guestcmd

import (
	"bytes"
	"sync"
)

// Output collects a remote command's stdout or stderr (or both), which
// Packer's communicators copy on goroutines of their own.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
