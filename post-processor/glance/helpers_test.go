package glance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// builderArtifact has the shape of a winbake-qemu artifact: the qcow2 disk
// and the manifest path in State("manifest").
type builderArtifact struct {
	files    []string
	manifest string
}

func (a *builderArtifact) BuilderId() string { return image.QemuBuilderID }
func (a *builderArtifact) Files() []string   { return a.files }
func (a *builderArtifact) Id() string        { return a.files[0] }
func (a *builderArtifact) String() string    { return "test build" }
func (a *builderArtifact) State(name string) interface{} {
	if name == "manifest" {
		return a.manifest
	}
	return nil
}
func (a *builderArtifact) Destroy() error { return nil }

var _ packersdk.Artifact = (*builderArtifact)(nil)

// writeRaw writes size bytes: 1 MiB random data, then zeros, then text.
func writeRaw(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, min(size, 1<<20))
	if _, err := rand.Read(head); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(head); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if size > 2<<20 {
		if _, err := f.WriteAt([]byte("winbake glance test disk\n"), size-(1<<20)); err != nil {
			t.Fatal(err)
		}
	}
}

// writeQcow2 writes a qcow2 image of a raw disk of rawSize bytes.
func writeQcow2(t *testing.T, path string, rawSize int64) {
	t.Helper()
	raw := path + ".raw"
	writeRaw(t, raw, rawSize)
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	os.Remove(raw)
}

// writeManifest writes a manifest exactly as winbake-qemu does (its own
// Manifest type).
func writeManifest(t *testing.T, path, disk string) image.Manifest {
	t.Helper()
	agent := true
	// The disk's SHA-256 as the builder records it, when the disk is there.
	sum := "00aa"
	if b, err := os.ReadFile(disk); err == nil {
		sum = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	m := image.Manifest{
		Disk: filepath.Base(disk), Format: "qcow2", SHA256: sum, Firmware: "uefi", TPM: true,
		Machine: "q35", DiskInterface: "virtio-scsi", NetDevice: "virtio-net", Accelerator: "tcg",
		AdminUser: "Administrator", QemuGuestAgent: &agent, ISOChecksum: "sha256:" + strings.Repeat("1f", 32),
		Updates: []image.ManifestUpdate{
			{KB: "KB5044415", File: "ssu-20348.2700-x64.cab", Result: "installed"},
			{KB: "KB5044281", File: "windows10.0-kb5044281-x64.msu", Result: "installed"},
			{KB: "KB5000011", File: "windows10.0-kb5000011-x64.cab", Result: "not_applicable"},
		},
	}
	m.Windows.ImageName = "Windows Server 2022 SERVERSTANDARD"
	m.Windows.EditionID = "ServerStandard"
	m.Windows.InstallationType = "Server"
	m.Windows.Version = "10.0.20348.587"
	m.Windows.Arch = "amd64"
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// uniqueName is an image name no other test (or earlier run) uses.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("winbake-test %s %d", t.Name(), time.Now().UnixNano())
}

// configure runs Configure with the map, failing the test on error.
func configure(t *testing.T, raw map[string]interface{}) *PostProcessor {
	t.Helper()
	var p PostProcessor
	if err := p.Configure(raw); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	p.getenv = func(string) string { return "" }
	return &p
}
