package compress

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

func TestArtifactState(t *testing.T) {
	cases := []struct {
		format, maas, disk string
	}{
		{"qcow2", "", "qcow2"},
		{"raw", "", "raw"},
		{"vhdx", "", "vhdx"},
		{"vmdk", "", "vmdk"},
		{"dd.gz", "ddgz", ""},
		{"dd.tgz", "ddtgz", ""},
		{"dd.xz", "ddxz", ""},
	}
	for _, tc := range cases {
		spec, _ := lookupFormat(tc.format)
		out := image.Output{Path: "/images/win." + tc.format, Format: tc.format, SHA256: "abc123", Size: 42,
			DiskFormat: spec.DiskFormat, MaasFiletype: spec.MaasFiletype}
		a := &Artifact{Outputs: []image.Output{out}}
		if got := a.State("format"); got != tc.format {
			t.Errorf("%s: State(format) = %v", tc.format, got)
		}
		if got := a.State("sha256"); got != "abc123" {
			t.Errorf("%s: State(sha256) = %v", tc.format, got)
		}
		if got := a.State("size"); got != int64(42) {
			t.Errorf("%s: State(size) = %v", tc.format, got)
		}
		if got := a.State("maas_filetype"); got != tc.maas {
			t.Errorf("%s: State(maas_filetype) = %v, want %q", tc.format, got, tc.maas)
		}
		if got := a.State("disk_format"); got != tc.disk {
			t.Errorf("%s: State(disk_format) = %v, want %q", tc.format, got, tc.disk)
		}
		if got := a.State("something_else"); got != nil {
			t.Errorf("%s: State(something_else) = %v, want nil", tc.format, got)
		}
		s := a.String()
		for _, want := range []string{tc.format, out.Path, "abc123"} {
			if !strings.Contains(s, want) {
				t.Errorf("String() = %q lacks %q", s, want)
			}
		}
		if a.Id() != out.Path || a.BuilderId() != BuilderId {
			t.Errorf("Id() = %q, BuilderId() = %q", a.Id(), a.BuilderId())
		}
	}
	// Every format has an entry in the table above.
	if len(cases) != len(formats) {
		t.Errorf("%d formats, %d tested", len(formats), len(cases))
	}
}

func TestArtifactDestroy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "win.qcow2")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &Artifact{Outputs: []image.Output{{Path: path, Format: "qcow2"}}}
	if got := a.Files(); len(got) != 1 || got[0] != path {
		t.Errorf("Files() = %v", got)
	}
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file still there after Destroy: %v", err)
	}
	if err := a.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}
