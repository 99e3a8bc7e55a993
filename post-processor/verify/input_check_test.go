package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// A damaged disk is refused before the instance boots: winbake-sysprep's
// disk cut short, and winbake-compress's qcow2 output whose size and
// SHA-256 are not what the compress artifact records (and, cut short,
// fails qemu-img check too).
func TestDamagedDiskIsNotBooted(t *testing.T) {
	t.Setenv("PACKER_TMP_DIR", t.TempDir())
	run := func(t *testing.T, art packersdk.Artifact) (*qemuvm.DriverMock, error) {
		code := filepath.Join(t.TempDir(), "OVMF_CODE_4M.fd")
		if err := os.WriteFile(code, []byte("code"), 0o644); err != nil {
			t.Fatal(err)
		}
		driver := &qemuvm.DriverMock{}
		p := &PostProcessor{driver: driver}
		if err := p.Configure(map[string]interface{}{"efi_firmware_code": code, "accelerator": "tcg", "timeout": "1m"}); err != nil {
			t.Fatal(err)
		}
		ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}}
		_, _, _, err := p.PostProcess(context.Background(), ui, art)
		return driver, err
	}

	t.Run("generalized disk truncated", func(t *testing.T) {
		dir, art := generalizedImage(t)
		disk := filepath.Join(dir, "standin.qcow2")
		if err := os.Truncate(disk, 64<<10+100); err != nil {
			t.Fatal(err)
		}
		driver, err := run(t, art)
		if err == nil || !strings.Contains(err.Error(), disk) || !strings.Contains(err.Error(), "its manifest") {
			t.Errorf("error %v, want the disk's SHA-256 refused against its manifest", err)
		}
		if driver.StartVMCalled {
			t.Error("the damaged disk was booted")
		}
	})

	t.Run("compressed qcow2 truncated", func(t *testing.T) {
		dir, _ := generalizedImage(t)
		published := filepath.Join(t.TempDir(), "standin.qcow2")
		sum := testQcow2(t, published)
		st, err := os.Stat(published)
		if err != nil {
			t.Fatal(err)
		}
		art := &image.Compressed{Manifest: filepath.Join(dir, "standin.json"),
			Outputs: []image.Output{{Path: published, Format: "qcow2", DiskFormat: "qcow2", SHA256: sum, Size: st.Size()}}}
		if err := os.Truncate(published, 64<<10+100); err != nil {
			t.Fatal(err)
		}
		driver, err := run(t, art)
		if err == nil || !strings.Contains(err.Error(), published) || !strings.Contains(err.Error(), "the winbake-compress artifact records") {
			t.Errorf("error %v, want the size the compress artifact records", err)
		}
		if driver.StartVMCalled {
			t.Error("the damaged disk was booted")
		}
		// Without a recorded size and checksum qemu-img check still
		// finds the damage.
		art.Outputs[0].SHA256, art.Outputs[0].Size = "", 0
		if _, err := run(t, art); err == nil || !strings.Contains(err.Error(), "is a damaged qcow2 image") {
			t.Errorf("error %v, want qemu-img check's finding", err)
		}
	})
}
