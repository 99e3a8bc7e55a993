package compress

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// glanceInspection is what Glance's format inspector reads from an image.
type glanceInspection struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual_size"`
	Safe        bool   `json:"safe"`
}

// glanceInspect runs the format inspector of the Glance that scripts/deps.sh
// installs (python3-glance, on Debian's own python3) on the image at path:
// the check Glance, Nova and Cinder apply to uploaded images.
func glanceInspect(t *testing.T, path string) glanceInspection {
	t.Helper()
	const python = "/usr/bin/python3"
	out, err := exec.Command(python, "testdata/glance_inspect.py", path).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("Glance's format inspector on %s (%s with python3-glance, installed by scripts/deps.sh): %v\n%s", path, python, err, msg)
	}
	var got glanceInspection
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("format inspector output %q: %v", out, err)
	}
	return got
}

// requireGlanceAccepts fails the test unless Glance's format inspector
// detects the image at path as format, with the virtual size size, and its
// safety checks pass.
func requireGlanceAccepts(t *testing.T, path, format string, size int64) {
	t.Helper()
	got := glanceInspect(t, path)
	if got.Format != format || got.VirtualSize != size || !got.Safe {
		t.Errorf("Glance's format inspector reads %s as %+v, want format %s, virtual size %d, safe", path, got, format, size)
	}
}
