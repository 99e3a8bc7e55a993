package glance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

func testUi() (*packersdk.BasicUi, *bytes.Buffer) {
	var out bytes.Buffer
	return &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &out, PB: &packersdk.NoopProgressTracker{}}, &out
}

// The winbake-qemu artifact, clouds.yaml auth, method upload: the image is
// active with the build's properties, read back with Go and the openstack
// CLI.
func TestPublishBuilderArtifactWithCloudsYAML(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "ws2022.qcow2")
	writeQcow2(t, disk, 3<<20)
	manifest := filepath.Join(dir, "ws2022.json")
	writeManifest(t, manifest, disk)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })

	p := configure(t, map[string]interface{}{
		"cloud": "winbake-test", "clouds_file": lab.cloudsFile,
		"image_name": name, "tags": []string{"winbake", "test"}, "min_ram": 2048, "stores": []string{"fs"},
		"properties": map[string]string{"hw_vif_model": "e1000e", "owner_team": "platform"},
	})
	ui, out := testUi()
	a, keep, _, err := p.PostProcess(context.Background(), ui, &builderArtifact{files: []string{disk}, manifest: manifest})
	if err != nil {
		t.Fatalf("PostProcess: %v\n%s", err, out)
	}
	if !keep {
		t.Error("keep = false; the input artifact must be kept")
	}
	id := a.Id()
	if a.State("endpoint") != lab.glanceURL+"/" || !strings.Contains(a.String(), id) {
		t.Errorf("artifact endpoint %v, String %q; want %s/ and the ID", a.State("endpoint"), a.String(), lab.glanceURL)
	}

	img, err := images.Get(context.Background(), adminImages(t), id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != images.ImageStatusActive || img.DiskFormat != "qcow2" || img.ContainerFormat != "bare" ||
		img.Visibility != images.ImageVisibilityPrivate || img.MinRAMMegabytes != 2048 || img.MinDiskGigabytes != 1 {
		t.Errorf("image: status %s disk_format %s container %s visibility %s min_ram %d min_disk %d; want active qcow2 bare private 2048 1",
			img.Status, img.DiskFormat, img.ContainerFormat, img.Visibility, img.MinRAMMegabytes, img.MinDiskGigabytes)
	}
	want := map[string]string{
		"os_type": "windows", "os_distro": "windows", "os_version": "2022", "hw_machine_type": "q35",
		"hw_firmware_type": "uefi", "os_secure_boot": "optional", "hw_tpm_version": "2.0", "hw_tpm_model": "tpm-crb",
		"hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi", "os_admin_user": "Administrator",
		"architecture": "x86_64", "hw_qemu_guest_agent": "yes", "winbake_updates": "KB5044281,KB5044415",
		"winbake_source_iso_checksum": "sha256:" + strings.Repeat("1f", 32),
		"hw_vif_model":                "e1000e", // the user's value wins over the manifest's virtio
		"owner_team":                  "platform",
	}
	for k, v := range want {
		if got, _ := img.Properties[k].(string); got != v {
			t.Errorf("Go: property %s = %q, want %q", k, got, v)
		}
	}

	var shown struct {
		Status     string                 `json:"status"`
		DiskFormat string                 `json:"disk_format"`
		Checksum   string                 `json:"checksum"`
		Tags       []string               `json:"tags"`
		Properties map[string]interface{} `json:"properties"`
	}
	openstackCLI(t, &shown, "image", "show", id)
	for k, v := range want {
		if got, _ := shown.Properties[k].(string); got != v {
			t.Errorf("openstack image show: property %s = %q, want %q", k, got, v)
		}
	}
	if shown.Status != "active" || shown.DiskFormat != "qcow2" || shown.Checksum != a.State("checksum") || len(shown.Tags) != 2 {
		t.Errorf("openstack image show: status %s disk_format %s checksum %s tags %v; want active qcow2 %v [winbake test]",
			shown.Status, shown.DiskFormat, shown.Checksum, shown.Tags, a.State("checksum"))
	}
	if h, _ := shown.Properties["os_hash_value"].(string); h == "" || h != a.State("os_hash_value") {
		t.Errorf("os_hash_value %q, artifact %v", h, a.State("os_hash_value"))
	}
}

// The OS_* variables of a standard openrc (user and project domain names),
// method glance-direct, a winbake-compress raw artifact whose manifest is
// found next to it.
func TestPublishCompressArtifactWithEnvGlanceDirect(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "ws2022.raw")
	writeRaw(t, raw, 5<<20)
	writeManifest(t, filepath.Join(dir, "ws2022.json"), filepath.Join(dir, "ws2022.qcow2"))
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })

	p := configure(t, map[string]interface{}{"image_name": name, "method": "glance-direct", "stores": []string{"fs"}, "visibility": "shared"})
	p.getenv = func(k string) string { return lab.openrc[k] }
	if _, ok := lab.openrc["OS_PROJECT_DOMAIN_NAME"]; !ok {
		t.Fatal("the lab's openrc has no OS_PROJECT_DOMAIN_NAME; the test would not cover the domain variables")
	}
	ui, out := testUi()
	input := &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", Size: 5 << 20, DiskFormat: "raw"}}}
	a, _, _, err := p.PostProcess(context.Background(), ui, input)
	if err != nil {
		t.Fatalf("PostProcess: %v\n%s", err, out)
	}
	img, err := images.Get(context.Background(), adminImages(t), a.Id()).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != images.ImageStatusActive || img.DiskFormat != "raw" || img.Visibility != images.ImageVisibilityShared || img.SizeBytes != 5<<20 {
		t.Errorf("image: status %s disk_format %s visibility %s size %d; want active raw shared %d", img.Status, img.DiskFormat, img.Visibility, img.SizeBytes, 5<<20)
	}
	if stores, _ := img.Properties["stores"].(string); stores != "fs" {
		t.Errorf("stores = %q, want fs", stores)
	}
	if v, _ := img.Properties["os_version"].(string); v != "2022" {
		t.Errorf("os_version = %q; the manifest next to the raw file was not read\n%s", v, out)
	}
}

func TestWrongPasswordIsAClearError(t *testing.T) {
	needLab(t)
	env := map[string]string{}
	for k, v := range lab.openrc {
		env[k] = v
	}
	env["OS_PASSWORD"] = "not-the-password-3141"
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 1<<20)
	name := uniqueName(t)
	p := configure(t, map[string]interface{}{"image_name": name})
	p.getenv = func(k string) string { return env[k] }
	ui, out := testUi()
	_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil {
		t.Fatal("PostProcess with a wrong password succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"401", `user "packer"`, `project "images"`, "password", "OS_* environment"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg+out.String(), "not-the-password-3141") {
		t.Errorf("the password leaked: %s\n%s", msg, out)
	}
	if n := len(imagesNamed(t, name)); n != 0 {
		t.Errorf("%d images named %q exist", n, name)
	}
}

// A file over glance's image_size_cap: 413, no image left behind.
func TestSizeCapLeavesNoImage(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "big.raw")
	writeRaw(t, raw, lab.sizeCap+(1<<20))
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name})
	ui, out := testUi()
	_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil {
		t.Fatalf("uploading %d bytes over a cap of %d succeeded", lab.sizeCap+(1<<20), lab.sizeCap)
	}
	if !strings.Contains(err.Error(), "413") || !strings.Contains(err.Error(), "image_size_cap") {
		t.Errorf("error %q does not explain the 413", err)
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("image left behind: %s (%s)\n%s", left[0].ID, left[0].Status, out)
	}
}

// proxyToGlance is a reverse proxy to the lab's glance-api whose upload
// request bodies pass through mangle.
func proxyToGlance(t *testing.T, mangle func(io.Reader) io.Reader) string {
	t.Helper()
	target, _ := url.Parse(lab.glanceURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		if r.Method == http.MethodPut && r.Body != nil {
			r.Body = io.NopCloser(mangle(r.Body))
		}
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// cutReader fails after limit bytes, like a network cut.
type cutReader struct {
	r     io.Reader
	left  int64
	total *atomic.Int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("connection cut by the test")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.total.Add(int64(n))
	return n, err
}

// The connection breaks after 2 MiB of an 8 MiB upload: error, no image.
func TestConnectionCutLeavesNoImage(t *testing.T) {
	needLab(t)
	var sent atomic.Int64
	endpoint := proxyToGlance(t, func(r io.Reader) io.Reader { return &cutReader{r: r, left: 2 << 20, total: &sent} })
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 8<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "image_endpoint": endpoint})
	ui, out := testUi()
	_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil {
		t.Fatal("an upload cut after 2 MiB succeeded")
	}
	if sent.Load() != 2<<20 {
		t.Errorf("the proxy forwarded %d bytes, want the cut at %d", sent.Load(), 2<<20)
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("image left behind after the cut: %s (%s)\nerror: %v\n%s", left[0].ID, left[0].Status, err, out)
	}
	if !strings.Contains(out.String(), "Deleted the incomplete image") {
		t.Errorf("the log does not say the image was deleted:\n%s", out)
	}
}

// flipReader changes one byte at offset at.
type flipReader struct {
	r   io.Reader
	pos int64
	at  int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.pos && f.at < f.pos+int64(n) {
		p[f.at-f.pos] ^= 0xff
	}
	f.pos += int64(n)
	return n, err
}

// One byte corrupted on the way: Glance stores the wrong data and goes
// active, the checksums differ from the file's, the image is deleted.
func TestHashMismatchDeletesImage(t *testing.T) {
	needLab(t)
	endpoint := proxyToGlance(t, func(r io.Reader) io.Reader { return &flipReader{r: r, at: 12345} })
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 3<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "image_endpoint": endpoint})
	ui, out := testUi()
	_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil {
		t.Fatal("a corrupted upload was accepted")
	}
	if !strings.Contains(err.Error(), "differs from the uploaded data") {
		t.Errorf("error %q does not report the checksum mismatch", err)
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("corrupted image left behind: %s (%s)\n%s", left[0].ID, left[0].Status, out)
	}
}

// Three builds of one family with keep_visible = 2: the oldest is hidden,
// not deleted, and the two newest stay visible.
func TestKeepVisibleRotation(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.qcow2")
	writeQcow2(t, disk, 1<<20)
	family := "wbtest-" + strings.ReplaceAll(uniqueName(t)[len("winbake-test "):], " ", "-")
	family = family[:min(len(family), 60)]
	var ids []string
	for i := 0; i < 3; i++ {
		name := uniqueName(t)
		t.Cleanup(func() { deleteImagesNamed(t, name) })
		p := configure(t, map[string]interface{}{
			"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "family": family, "keep_visible": 2,
		})
		ui, out := testUi()
		a, _, _, err := p.PostProcess(context.Background(), ui, &builderArtifact{files: []string{disk}})
		if err != nil {
			t.Fatalf("build %d: %v\n%s", i+1, err, out)
		}
		ids = append(ids, a.Id())
		if i == 2 {
			if hidden, _ := a.State("hidden_images").([]string); len(hidden) != 1 || hidden[0] != ids[0] {
				t.Errorf("third build hid %v, want [%s]", hidden, ids[0])
			}
		}
	}
	client := adminImages(t)
	for i, id := range ids {
		img, err := images.Get(context.Background(), client, id).Extract()
		if err != nil {
			t.Fatalf("image %d (%s) is gone: %v", i+1, id, err)
		}
		wantHidden := i == 0
		if img.Hidden != wantHidden || img.Status != images.ImageStatusActive {
			t.Errorf("image %d: os_hidden %v status %s; want %v active", i+1, img.Hidden, img.Status, wantHidden)
		}
		if f, _ := img.Properties["family"].(string); f != family {
			t.Errorf("image %d: family %q, want %q", i+1, f, family)
		}
	}
	// The default image list (what users and Horizon see) shows the two
	// newest only; --hidden shows the old one.
	var listed []struct{ ID string }
	openstackCLI(t, &listed, "image", "list", "--property", "family="+family)
	if len(listed) != 2 || !containsID(listed, ids[1]) || !containsID(listed, ids[2]) {
		t.Errorf("openstack image list --property family=%s = %v; want %s and %s", family, listed, ids[1], ids[2])
	}
	var hiddenList []struct{ ID string }
	openstackCLI(t, &hiddenList, "image", "list", "--hidden", "--property", "family="+family)
	if len(hiddenList) != 1 || hiddenList[0].ID != ids[0] {
		t.Errorf("openstack image list --hidden = %v; want %s", hiddenList, ids[0])
	}
}

func containsID(list []struct{ ID string }, id string) bool {
	for _, e := range list {
		if e.ID == id {
			return true
		}
	}
	return false
}

// Ctrl-C during the upload: the context is cancelled, the image deleted.
func TestCancelDuringUploadLeavesNoImage(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endpoint := proxyToGlance(t, func(r io.Reader) io.Reader { return &cancelReader{r: r, after: 1 << 20, cancel: cancel} })
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 16<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "image_endpoint": endpoint})
	ui, out := testUi()
	_, _, _, err := p.PostProcess(ctx, ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil {
		t.Fatal("a cancelled upload succeeded")
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("image left behind after cancel: %s (%s)\n%s", left[0].ID, left[0].Status, out)
	}
}

// cancelReader cancels the build's context once after bytes passed.
type cancelReader struct {
	r      io.Reader
	after  int64
	seen   int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.seen += int64(n)
	if c.seen >= c.after {
		c.cancel()
	}
	return n, err
}

var _ = os.Getenv

// Glance answers the first upload with 401 after 1 MiB of data, as it does
// when the token expires mid-upload: gophercloud logs in again with
// Keystone, rewinds the file and sends it again; the hashes cover the data
// once and match Glance's.
func TestUploadRetriedAfterTokenRefusal(t *testing.T) {
	needLab(t)
	target, _ := url.Parse(lab.glanceURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int32
	var tokens sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/file") {
			tokens.Store(r.Header.Get("X-Auth-Token"), true)
			if refused.Add(1) == 1 {
				_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
				http.Error(w, `{"error": "token expired (test)"}`, http.StatusUnauthorized)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 6<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "image_endpoint": srv.URL})
	ui, out := testUi()
	a, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err != nil {
		t.Fatalf("PostProcess after one 401: %v\n%s", err, out)
	}
	if refused.Load() != 2 {
		t.Errorf("%d upload requests, want 2 (refused, then retried)", refused.Load())
	}
	n := 0
	tokens.Range(func(_, _ any) bool { n++; return true })
	if n != 2 {
		t.Errorf("the retry used %d distinct tokens, want a fresh one (2)", n)
	}
	if a.State("size") != int64(6<<20) {
		t.Errorf("size %v, want %d", a.State("size"), 6<<20)
	}
	// The retry went into the same image: no second, half-made one.
	if imgs := imagesNamed(t, name); len(imgs) != 1 || imgs[0].ID != a.Id() {
		t.Errorf("images named %q after the retry: %d, want only %s", name, len(imgs), a.Id())
	}
}

// An unknown store: Glance refuses the upload (400), the image is deleted
// and the error names the store.
func TestUnknownStoreLeavesNoImage(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 1<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "stores": []string{"no-such-store"}})
	ui, out := testUi()
	_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil {
		t.Fatal("an upload into an unknown store succeeded")
	}
	if !strings.Contains(err.Error(), "no-such-store") {
		t.Errorf("error %q does not name the store", err)
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("image left behind: %s (%s)\n%s", left[0].ID, left[0].Status, out)
	}
}
