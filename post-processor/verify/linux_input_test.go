package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// A disk without a winbake manifest is taken for Linux only when its
// os-release can be read, or os_type says so: a Windows disk from another
// builder gets an error that says what to do, not an SSH user question.
func TestDiskWithoutManifestOrOSRelease(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "windows.raw")
	if err := os.WriteFile(disk, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	art := &packersdk.MockArtifact{BuilderIdValue: "transcend.qemu", FilesValue: []string{disk}}
	_, _, err := readLinuxInput(context.Background(), &Config{}, art)
	if err == nil || !strings.Contains(err.Error(), "no winbake manifest") || !strings.Contains(err.Error(), `os_type = "linux"`) {
		t.Fatalf("error %v", err)
	}
	li, _, err := readLinuxInput(context.Background(), &Config{OSType: OSLinux}, art)
	if err != nil || li.OSRelease != nil || li.ReadErr == nil {
		t.Fatalf("os_type = linux: %+v, %v", li, err)
	}
}
