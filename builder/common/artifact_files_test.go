package common

import (
	"os"
	"path/filepath"
	"testing"
)

// Only what the build wrote goes: a post-processor's output in the same
// directory stays, and so does the directory; directories the build's
// files leave empty go.
func TestRemoveArtifactFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "output-golden")
	write := func(rel string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := []string{write("golden.qcow2"), write("golden.json"), write("efivars.fd"), write("tpm/tpm2-00.permall")}
	other := write("golden.dd.gz")
	if err := RemoveArtifactFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, filepath.Join(dir, "tpm")) {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there", f)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another component's file went: %v", err)
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	if err := RemoveArtifactFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the empty output directory stays: %v", err)
	}
}
