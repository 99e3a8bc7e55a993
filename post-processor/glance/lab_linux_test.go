package glance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
)

// writeLinuxDisk writes a small GPT disk as qcow2: an ESP, then an ext4
// root with Debian's os-release (through its /etc link) and a kernel with
// its initramfs in /boot.
func writeLinuxDisk(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "root")
	files := map[string]string{
		"usr/lib/os-release":                   "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
		"etc/debian_version":                   "12.11\n",
		"boot/vmlinuz-6.1.0-37-cloud-amd64":    "winbake test kernel 6.1.0-37\n",
		"boot/initrd.img-6.1.0-37-cloud-amd64": "winbake test initramfs 6.1.0-37\n",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	script := `mkfs.ext4 -q -L rootfs -d root root.ext4 8M
truncate -s 14M disk.raw
printf 'label: gpt\nstart=2048, size=8192, type=U\nstart=10240, size=16384, type=L\n' | sfdisk -q disk.raw
dd if=root.ext4 of=disk.raw bs=512 seek=10240 conv=notrunc status=none
qemu-img convert -O qcow2 disk.raw debian.qcow2`
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return filepath.Join(dir, "debian.qcow2")
}

func imageData(t *testing.T, id string) string {
	t.Helper()
	r, err := imagedata.Download(context.Background(), adminImages(t), id).Extract()
	if err != nil {
		t.Fatalf("downloading image %s: %v", id, err)
	}
	defer func() { _ = r.Close() }()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A Linux disk gets its properties from its own os-release; with layout =
// "uec" it is published as kernel (aki), ramdisk (ari) and root file system
// (ami) whose kernel_id and ramdisk_id name the two, holding exactly the
// bytes of the image's /boot and root partition.
func TestPublishLinuxDiskAndUECTriple(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	disk := writeLinuxDisk(t, dir)

	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name})
	ui, out := testUi()
	a, _, _, err := p.PostProcess(context.Background(), ui, &builderArtifact{files: []string{disk}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	img, err := images.Get(context.Background(), adminImages(t), a.Id()).Extract()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"os_type": "linux", "os_distro": "debian", "os_version": "12", "image_original_user": "debian", "patchlevel": "12.11"}
	for k, v := range want {
		if got, _ := img.Properties[k].(string); got != v {
			t.Errorf("whole disk: property %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"kernel_id", "ramdisk_id", "os_admin_user"} {
		if _, ok := img.Properties[k]; ok {
			t.Errorf("whole disk carries %s", k)
		}
	}
	if img.DiskFormat != "qcow2" || img.ContainerFormat != "bare" {
		t.Errorf("whole disk: %s/%s", img.DiskFormat, img.ContainerFormat)
	}

	uecName := uniqueName(t)
	p = configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": uecName, "layout": "uec"})
	ui, out = testUi()
	a, _, _, err = p.PostProcess(context.Background(), ui, &builderArtifact{files: []string{disk}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	kernelID, _ := a.State("kernel_id").(string)
	ramdiskID, _ := a.State("ramdisk_id").(string)
	t.Cleanup(func() {
		client := adminImages(t)
		for _, id := range []string{a.Id(), kernelID, ramdiskID} {
			_ = images.Delete(context.Background(), client, id).ExtractErr()
		}
	})
	client := adminImages(t)
	root, err := images.Get(context.Background(), client, a.Id()).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if root.DiskFormat != "ami" || root.ContainerFormat != "ami" || root.Properties["kernel_id"] != kernelID || root.Properties["ramdisk_id"] != ramdiskID {
		t.Fatalf("root: %s/%s kernel_id %v ramdisk_id %v; artifact says %s %s", root.DiskFormat, root.ContainerFormat, root.Properties["kernel_id"], root.Properties["ramdisk_id"], kernelID, ramdiskID)
	}
	if root.Properties["os_distro"] != "debian" {
		t.Errorf("root: os_distro %v", root.Properties["os_distro"])
	}
	for id, w := range map[string]struct{ format, data string }{
		kernelID:  {"aki", "winbake test kernel 6.1.0-37\n"},
		ramdiskID: {"ari", "winbake test initramfs 6.1.0-37\n"},
	} {
		img, err := images.Get(context.Background(), client, id).Extract()
		if err != nil {
			t.Fatalf("kernel_id/ramdisk_id %s does not exist: %v", id, err)
		}
		if img.DiskFormat != w.format || img.ContainerFormat != w.format || img.Status != images.ImageStatusActive {
			t.Errorf("%s: %s/%s %s, want %s active", id, img.DiskFormat, img.ContainerFormat, img.Status, w.format)
		}
		if got := imageData(t, id); got != w.data {
			t.Errorf("%s holds %q, want %q", id, got, w.data)
		}
	}
	// The ami is the ext4 root partition itself: its superblock magic at
	// 1080.
	if data := imageData(t, a.Id()); len(data) != 8<<20 || data[1080:1082] != "\x53\xef" {
		t.Errorf("root image: %d bytes, not the 8 MiB ext4 partition", len(data))
	}
}

// fakeNova answers GET /servers/detail like Nova's compute API
// (api-ref "List Servers Detailed": filters image and all_tenants, each
// server with image {"id"} and tenant_id), from a table of image ID →
// projects whose instances use it. It records each query.
type fakeNova struct {
	mu      sync.Mutex
	inUse   map[string][]string
	queries []string
	// denyAllTenants answers all_tenants with 403, as Nova's default
	// policy does for a non-admin.
	denyAllTenants bool
}

func (n *fakeNova) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queries = append(n.queries, r.URL.RawQuery)
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/servers/detail") {
		http.Error(w, `{"itemNotFound": {"code": 404, "message": "not modelled"}}`, http.StatusNotFound)
		return
	}
	all := r.URL.Query().Get("all_tenants") != ""
	if all && n.denyAllTenants {
		w.WriteHeader(http.StatusForbidden)
		_, _ = fmt.Fprint(w, `{"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants to be performed."}}`)
		return
	}
	image := r.URL.Query().Get("image")
	list := []map[string]any{}
	for i, project := range n.inUse[image] {
		if !all && project != labEnv("OS_PROJECT_ID") {
			continue
		}
		list = append(list, map[string]any{
			"id": fmt.Sprintf("00000000-0000-0000-0000-%012d", i), "name": fmt.Sprintf("vm%d", i), "status": "ACTIVE",
			"tenant_id": project, "image": map[string]any{"id": image}, "flavor": map[string]any{"id": "1"},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"servers": list})
}

func (n *fakeNova) use(image string, projects ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inUse[image] = projects
}

// Three builds of a family with keep_visible = 1: retire =
// "delete-unused" deletes the older image no instance uses and only hides
// the one Nova reports in use, whatever the round. Then a fourth with
// retire = "private-and-share-with-users" shares the image in use with
// exactly its users' project, and a dry run changes nothing.
func TestRetireNeverTouchesImagesInUse(t *testing.T) {
	needLab(t)
	nova := &fakeNova{inUse: map[string][]string{}}
	srv := httptest.NewServer(nova)
	defer srv.Close()
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.qcow2")
	writeQcow2(t, disk, 1<<20)
	family := fmt.Sprintf("wbretire-%d", os.Getpid())
	var ids []string
	build := func(retire string, dryRun bool) *Artifact {
		t.Helper()
		name := uniqueName(t)
		t.Cleanup(func() { deleteImagesNamed(t, name) })
		p := configure(t, map[string]interface{}{
			"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "family": family,
			"keep_visible": 1, "retire": retire, "retire_dry_run": dryRun, "compute_endpoint": srv.URL + "/v2.1",
			"os_type": "windows",
		})
		ui, out := testUi()
		a, _, _, err := p.PostProcess(context.Background(), ui, &builderArtifact{files: []string{disk}})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		ids = append(ids, a.Id())
		t.Logf("%s", out)
		return a.(*Artifact)
	}
	get := func(id string) (*images.Image, bool) {
		img, err := images.Get(context.Background(), adminImages(t), id).Extract()
		return img, err == nil
	}
	const otherProject = "0123456789abcdef0123456789abcdef"

	build("delete-unused", false)
	nova.use(ids[0], otherProject)
	build("delete-unused", false) // image 1 in use: hidden, not deleted
	if img, ok := get(ids[0]); !ok || !img.Hidden {
		t.Fatalf("image 1, in use, after build 2: exists %v, hidden %v", ok, ok && img.Hidden)
	}
	build("delete-unused", false) // image 2 unused: deleted; image 1 still in use
	if _, ok := get(ids[1]); ok {
		t.Errorf("image 2, unused, was not deleted")
	}
	if img, ok := get(ids[0]); !ok || img.Status != images.ImageStatusActive {
		t.Fatalf("image 1, in use, is gone after build 3")
	}
	queried := strings.Join(nova.queries, " ")
	if !strings.Contains(queried, "image="+ids[0]) || !strings.Contains(queried, "all_tenants=true") {
		t.Errorf("Nova was asked %q", queried)
	}

	// Share with the users only.
	build("private-and-share-with-users", false)
	img, _ := get(ids[0])
	if img.Visibility != images.ImageVisibilityShared || !img.Hidden {
		t.Errorf("image 1 in use by %s: visibility %s hidden %v, want shared and hidden", otherProject, img.Visibility, img.Hidden)
	}
	pages, err := members.List(adminImages(t), ids[0]).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := members.ExtractMembers(pages)
	if len(ms) != 1 || ms[0].MemberID != otherProject {
		t.Errorf("image 1 members %+v, want only %s", ms, otherProject)
	}

	// A dry run reports and changes nothing.
	before, _ := get(ids[3])
	a := build("delete-unused", true)
	after, ok := get(ids[3])
	if !ok || after.Hidden != before.Hidden || after.Visibility != before.Visibility {
		t.Errorf("retire_dry_run changed image 4")
	}
	if len(a.Retired) == 0 || a.Retired[0].Done {
		t.Errorf("dry run plan %+v", a.Retired)
	}

	// Nova refusing all_tenants: nothing is deleted on a partial answer.
	nova.denyAllTenants = true
	build("delete-unused", false)
	for _, id := range []string{ids[0], ids[3]} {
		if _, ok := get(id); !ok {
			t.Errorf("image %s deleted although Nova answered for one project only", id)
		}
	}
}
