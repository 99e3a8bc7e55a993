package linuximage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/deps.sh installs it): %v", tool, err)
		}
	}
}

func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// tree writes a Debian-like root: os-release as a link into /usr/lib, two
// kernels with their initramfs, a rescue kernel.
func tree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"usr/lib/os-release":                   "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n# a comment\nHOME_URL='https://www.debian.org/'\n",
		"boot/vmlinuz-6.1.0-9-cloud-amd64":     "kernel 9",
		"boot/initrd.img-6.1.0-9-cloud-amd64":  "initrd 9",
		"boot/vmlinuz-6.1.0-28-cloud-amd64":    "kernel 28",
		"boot/initrd.img-6.1.0-28-cloud-amd64": "initrd 28",
		"boot/vmlinuz-0-rescue-abcdef":         "rescue",
	}
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(dir, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
}

func TestReadsDebianFromPartitionedDisks(t *testing.T) {
	need(t, "qemu-img", "debugfs", "mkfs.ext4", "sfdisk", "mkfs.vfat")
	for _, tc := range []struct{ name, label, typ, format string }{
		{"gpt-qcow2", "gpt", "L", "qcow2"},
		{"mbr-raw", "dos", "83", "raw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tree(t, filepath.Join(dir, "root"))
			// An ESP first, so the reader must pick the ext4 partition.
			sh(t, dir, `mkfs.ext4 -q -L rootfs -d root root.ext4 16M
truncate -s 4M esp.vfat && mkfs.vfat -n ESP esp.vfat >/dev/null
truncate -s 22M disk.raw
printf 'label: `+tc.label+`\nstart=2048, size=8192, type=ef\nstart=10240, size=32768, type=`+tc.typ+`\n' | sed 's/type=ef/type=`+map[string]string{"gpt": "U", "dos": "ef"}[tc.label]+`/' | sfdisk -q disk.raw
dd if=esp.vfat of=disk.raw bs=512 seek=2048 conv=notrunc status=none
dd if=root.ext4 of=disk.raw bs=512 seek=10240 conv=notrunc status=none
qemu-img convert -O `+tc.format+` disk.raw disk.img`)
			ctx := context.Background()
			d, err := Open(ctx, filepath.Join(dir, "disk.img"), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = d.Close() }()
			if d.Format != tc.format || len(d.Partitions) != 2 {
				t.Fatalf("format %s, partitions %s", d.Format, d.Describe())
			}
			if got := d.ExtPartitions(); len(got) != 1 || got[0] != 2 {
				t.Fatalf("ext partitions %v, want [2] (%s)", got, d.Describe())
			}
			r, err := d.OSRelease(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != "debian" || r.VersionID != "12" || r.VersionCodename != "bookworm" || r.PrettyName != "Debian GNU/Linux 12 (bookworm)" || r.Path != "/etc/os-release" || r.Partition != 2 {
				t.Fatalf("os-release %+v", r)
			}
			b, err := d.Boot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b.Kernel != "/boot/vmlinuz-6.1.0-28-cloud-amd64" || b.Initrd != "/boot/initrd.img-6.1.0-28-cloud-amd64" {
				t.Fatalf("boot %+v: want the newest kernel, not the rescue one or -9", b)
			}
			out := filepath.Join(dir, "kernel")
			if err := d.CopyFile(ctx, b.Partition, b.Kernel, out); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(out); string(got) != "kernel 28" {
				t.Fatalf("kernel copy holds %q", got)
			}
			if _, err := d.ReadFile(ctx, 2, "/etc/nothing"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("reading a missing file: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestWholeDiskFileSystem(t *testing.T) {
	need(t, "qemu-img", "debugfs", "mkfs.ext4")
	dir := t.TempDir()
	tree(t, filepath.Join(dir, "root"))
	sh(t, dir, `mkfs.ext4 -q -d root fs.img 16M`)
	d, err := Open(context.Background(), filepath.Join(dir, "fs.img"), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	if !d.Whole {
		t.Fatalf("a file system image read as partitions %s", d.Describe())
	}
	if r, err := d.OSRelease(context.Background()); err != nil || r.ID != "debian" || r.Partition != 0 {
		t.Fatalf("os-release %+v, %v", r, err)
	}
}

func TestNoLinuxFileSystemIsNamed(t *testing.T) {
	need(t, "qemu-img", "debugfs", "mkfs.vfat")
	dir := t.TempDir()
	sh(t, dir, `truncate -s 8M disk.raw && printf 'label: gpt\nstart=2048, type=U\n' | sfdisk -q disk.raw`)
	d, err := Open(context.Background(), filepath.Join(dir, "disk.raw"), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	_, err = d.OSRelease(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no ext2/3/4 file system") || !strings.Contains(err.Error(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") {
		t.Fatalf("error %v: want one naming the partitions found", err)
	}
}

func TestParseOSReleaseQuoting(t *testing.T) {
	vars, err := ParseOSRelease([]byte("NAME=\"Fedora \\\"Linux\\\"\"\nID=fedora\nVERSION_ID=40\nID_LIKE='rhel centos'\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := osReleaseFrom(vars)
	if r.Name != `Fedora "Linux"` || r.VersionID != "40" || len(r.IDLike) != 2 || r.Distro() != "fedora" {
		t.Fatalf("%+v", r)
	}
	if _, err := ParseOSRelease([]byte("ID=\"debian\n")); err == nil {
		t.Fatal("an unterminated quote was accepted")
	}
	if got := (&OSRelease{ID: "opensuse-leap"}).Distro(); got != "opensuse" {
		t.Fatalf("opensuse-leap → %q", got)
	}
}

func TestCompareVersions(t *testing.T) {
	if compareVersions("6.1.0-28-cloud-amd64", "6.1.0-9-cloud-amd64") <= 0 || compareVersions("5.14.0-427.el9.x86_64", "5.14.0-70.el9.x86_64") <= 0 {
		t.Fatal("kernel versions compared as strings")
	}
}
