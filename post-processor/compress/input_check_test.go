package compress

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// A damaged input is refused before anything is written: a qcow2 cut to
// half its size (qemu-img convert would read the missing clusters as
// zeros and write a "good" image), an empty file, and a disk whose
// SHA-256 is not the one its winbake manifest records.
func TestDamagedInputIsRefused(t *testing.T) {
	requireTools(t, "qemu-img")
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, disk string)
		want   string
	}{
		{"truncated qcow2", func(t *testing.T, disk string) {
			st, err := os.Stat(disk)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(disk, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "is a damaged qcow2 image: qemu-img check found"},
		{"empty", func(t *testing.T, disk string) {
			if err := os.Truncate(disk, 0); err != nil {
				t.Fatal(err)
			}
		}, "is empty (0 bytes)"},
		{"not the disk its manifest records", func(t *testing.T, disk string) {
			m := `{"disk": "disk.qcow2", "format": "qcow2", "sha256": "` + strings.Repeat("ab", 32) + `"}`
			if err := os.WriteFile(filepath.Join(filepath.Dir(disk), "disk.json"), []byte(m), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "but its manifest " + "%DIR%/disk.json records abab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInput(t, "qcow2")
			tc.damage(t, in)
			out := filepath.Join(t.TempDir(), "out")
			p := configure(t, map[string]interface{}{"formats": []string{"qcow2", "dd.gz"}, "output": filepath.Join(out, "win.{{.Ext}}")})
			files := []string{in}
			if m := filepath.Join(filepath.Dir(in), "disk.json"); steps.FileExists(m) {
				files = append(files, m)
			}
			ui := newTestUI()
			a, _, _, err := p.PostProcess(context.Background(), ui, inputArtifact(files...))
			want := strings.ReplaceAll(tc.want, "%DIR%", filepath.Dir(in))
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), in) {
				t.Fatalf("PostProcess: %v (artifact %v), want an error naming %s and %q", err, a, in, want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the output folder was made for a refused input: %v", err)
			}
		})
	}
}
