package updates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Every mistake in the update packages is refused at Prepare (`packer
// validate`), before Windows Setup runs for an hour: one error naming the
// setting and what is accepted.
func TestOneMistakeIsRefusedAtValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	msu := write("windows10.0-kb5044281-x64.msu", "an msu")
	txt := write("readme.txt", "not a package")
	if err := os.Mkdir(filepath.Join(dir, "2026-11.msu"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"glob matching nothing", map[string]any{"packages": []string{filepath.Join(dir, "*.cab")}}, []string{"packages[0]: ", "matches no file", "give the path or glob of .msu or .cab files"}},
		{"path that does not exist", map[string]any{"packages": []string{filepath.Join(dir, "kb5099999.msu")}}, []string{"packages[0]: " + filepath.Join(dir, "kb5099999.msu") + " does not exist"}},
		{"not a .msu or .cab", map[string]any{"packages": []string{txt}}, []string{"packages[0]: " + txt + " is not a .msu or .cab file"}},
		{"a directory", map[string]any{"packages": []string{filepath.Join(dir, "2026-11.msu")}}, []string{"packages[0]: ", "is a directory"}},
		{"block path that does not exist", map[string]any{"package": []map[string]any{{"path": filepath.Join(dir, "gone.cab")}}}, []string{"package[0].path: ", "gone.cab does not exist"}},
		{"checksum that does not match", map[string]any{"package": []map[string]any{{"path": msu, "checksum": "sha256:" + strings.Repeat("0", 64)}}},
			[]string{"package[0].checksum: " + msu + " has SHA-256 ", "the checksum says " + strings.Repeat("0", 64)}},
		{"URL that names no package", map[string]any{"package": []map[string]any{{"url": "https://example.com/download?id=5044281", "checksum": "sha256:" + strings.Repeat("0", 64)}}},
			[]string{"package[0].url: ", "does not name a .msu or .cab file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := c.Prepare(tc.raw)
			var errs []error
			if m, ok := err.(*packersdk.MultiError); ok {
				errs = m.Errors
			} else if err != nil {
				errs = []error{err}
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error %q lacks %q", errs[0], w)
				}
			}
		})
	}
}

// A folder holding only .msu files: the .cab glob beside the .msu one
// matches nothing, and that is fine as long as the list finds packages.
func TestGlobsMatchBetweenThem(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "windows10.0-kb5044281-x64.msu"), []byte("an msu"), 0o644); err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := c.Prepare(map[string]any{"packages": []string{filepath.Join(dir, "*.msu"), filepath.Join(dir, "*.cab")}}); err != nil {
		t.Errorf("one of two globs matching: %v", err)
	}
	empty := t.TempDir()
	var none Config
	err := none.Prepare(map[string]any{"packages": []string{filepath.Join(empty, "*.msu"), filepath.Join(empty, "*.cab")}})
	if err == nil || !strings.Contains(err.Error(), "packages[0]: ") || !strings.Contains(err.Error(), "packages[1]: ") {
		t.Errorf("no glob matching: %v", err)
	}
}
