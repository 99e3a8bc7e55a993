package sysprep

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// A damaged golden disk is refused before it is copied or booted: one cut
// short, and one that is not the disk its manifest records.
func TestDamagedGoldenDiskIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "standin.qcow2"), 64<<10+100); err != nil {
				t.Fatal(err)
			}
		}, "is a damaged qcow2 image"},
		{"replaced", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "standin.qcow2")); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "standin.qcow2"), "20M").CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}, "but its manifest " + "%DIR%/standin.json records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, art := goldenImage(t, nil)
			tc.damage(t, dir)
			out := filepath.Join(t.TempDir(), "generalized")
			driver := &qemuvm.DriverMock{}
			p := testPostProcessor(t, driver, out)
			ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}}
			a, keep, _, err := p.PostProcess(context.Background(), ui, art)
			want := strings.ReplaceAll(tc.want, "%DIR%", dir)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), filepath.Join(dir, "standin.qcow2")) {
				t.Fatalf("artifact %v, error %v; want one naming the disk and %q", a, err, want)
			}
			if !keep {
				t.Error("the golden image is not kept")
			}
			if driver.ConvertSrc != "" || driver.StartVMCalled {
				t.Error("the damaged disk was copied or booted")
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output directory made: %v", err)
			}
		})
	}
}
