package compress

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A full file system is named as such, whatever the tool that hit it
// says (xz dies of SIGPIPE, qemu-img's vmdk driver reports EINVAL), with
// the path, the space left and the space needed; nothing is left in the
// full directory, not even the folders made for the output.
func TestFullFileSystemIsNamed(t *testing.T) {
	requireTools(t, "qemu-img", "xz")
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	full := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "winbake-test", full).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", full).Run() })

	// 6 MiB of random data in a 16 MiB raw disk: more than 1 MiB in
	// every format.
	in := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 6<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(in, 16<<20); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"qcow2", "raw", "vhdx", "vmdk", "dd.gz", "dd.tgz", "dd.xz"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(full, "clouds", "windows."+format)
			p := configure(t, map[string]interface{}{"format": format, "output": out})
			_, _, err := postProcess(context.Background(), p, newTestUI(), in)
			if err == nil {
				t.Fatal("compressed 6 MiB of random data into 1 MiB")
			}
			if testing.Verbose() {
				t.Log(err)
			}
			for _, want := range []string{"no space left on device writing " + out, filepath.Dir(out) + " has ", " free of 1.0 MiB", "needs up to "} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if left, _ := os.ReadDir(full); len(left) != 0 {
				t.Errorf("left in the full file system: %v", left)
			}
		})
	}
}
