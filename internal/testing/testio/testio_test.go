package testio

import (
	"log"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Writes from several goroutines all arrive; the captured log has them
// without timestamps; WriteFile makes the directories.
func TestHelpers(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = b.Write([]byte("x")) }()
	}
	wg.Wait()
	if b.String() != "xxxxxxxx" {
		t.Errorf("buffer %q", b.String())
	}

	logged := CaptureLog(t)
	log.Print("hello")
	if logged.String() != "hello\n" {
		t.Errorf("log %q", logged.String())
	}

	path := filepath.Join(t.TempDir(), "a", "b", "c.txt")
	WriteFile(t, path, "content")
	if got, err := os.ReadFile(path); err != nil || string(got) != "content" {
		t.Errorf("file %q, %v", got, err)
	}
}
