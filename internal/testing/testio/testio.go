// Package testio holds the tests' helpers for output and files: a buffer
// several goroutines write to while the test reads it, the standard
// logger (Packer's log) captured into one, and writing a file with its
// directories. Tests only: the plugin binary does not carry it.
package testio

import (
	"bytes"
	"log"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// LockedBuffer collects output written from several goroutines (a UI, a
// communicator, a logger) while the test reads it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CaptureLog routes the standard logger (the Packer log) into a buffer,
// without timestamps, until the test ends.
func CaptureLog(t testing.TB) *LockedBuffer {
	buf := &LockedBuffer{}
	prevOut, prevFlags := log.Writer(), log.Flags()
	log.SetOutput(buf)
	log.SetFlags(0)
	t.Cleanup(func() { log.SetOutput(prevOut); log.SetFlags(prevFlags) })
	return buf
}

// WriteFile writes content to path, making its directories, and fails the
// test on an error.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
