package glance

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// The tests that talk to OpenStack use a real Keystone and glance-api
// started by scripts/openstack-lab.sh (make test starts it once; otherwise
// TestMain starts it and stops it again). -short skips them.
var lab struct {
	dir        string // state directory with clouds.yaml and openrc
	cloudsFile string
	openrc     map[string]string
	glanceURL  string
	sizeCap    int64
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	script := filepath.Join(root, "scripts", "openstack-lab.sh")
	lab.dir = os.Getenv("WINBAKE_OPENSTACK_LAB")
	if lab.dir == "" {
		lab.dir = filepath.Join(root, "build", "openstack-lab")
	}
	alreadyUp := exec.Command("bash", script, "status", lab.dir).Run() == nil
	start := exec.Command("bash", script, "start", lab.dir)
	start.Stdout, start.Stderr = os.Stderr, os.Stderr
	if err := start.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "starting Keystone and glance-api with %s: %v\n", script, err)
		os.Exit(1)
	}
	if err := loadLab(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if !alreadyUp {
		stop := exec.Command("bash", script, "stop", lab.dir)
		stop.Stdout, stop.Stderr = os.Stderr, os.Stderr
		_ = stop.Run()
	}
	os.Exit(code)
}

func loadLab() error {
	lab.cloudsFile = filepath.Join(lab.dir, "clouds.yaml")
	env, err := readEnvFile(filepath.Join(lab.dir, "openrc"))
	if err != nil {
		return err
	}
	lab.openrc = env
	labEnv, err := readEnvFile(filepath.Join(lab.dir, "lab.env"))
	if err != nil {
		return err
	}
	lab.glanceURL = labEnv["GLANCE_URL"]
	_, err = fmt.Sscan(labEnv["IMAGE_SIZE_CAP"], &lab.sizeCap)
	return err
}

// readEnvFile reads `export K=V` / `K=V` lines.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(s.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env, s.Err()
}

func needLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs Keystone and glance-api (scripts/openstack-lab.sh)")
	}
}

// adminImages is an image client logged in as the lab's admin, which sees
// every project's images, hidden ones included.
func adminImages(t *testing.T) *gophercloud.ServiceClient {
	t.Helper()
	client, _, err := connect(context.Background(), &AuthConfig{Cloud: "winbake-admin", CloudsFile: lab.cloudsFile}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// imagesNamed lists every image called name (any status, hidden or not).
func imagesNamed(t *testing.T, name string) []images.Image {
	t.Helper()
	client := adminImages(t)
	var all []images.Image
	for _, hidden := range []bool{false, true} {
		pages, err := images.List(client, images.ListOpts{Name: name, Hidden: hidden}).AllPages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		list, err := images.ExtractImages(pages)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, list...)
	}
	return all
}

// deleteImagesNamed removes what a test created.
func deleteImagesNamed(t *testing.T, name string) {
	t.Helper()
	client := adminImages(t)
	for _, img := range imagesNamed(t, name) {
		if err := images.Delete(context.Background(), client, img.ID).ExtractErr(); err != nil {
			t.Errorf("deleting test image %s: %v", img.ID, err)
		}
	}
}

// openstackCLI runs the openstack CLI as the lab's packer user and decodes
// its JSON output.
func openstackCLI(t *testing.T, out interface{}, args ...string) {
	t.Helper()
	cmd := exec.Command("openstack", append(args, "-f", "json")...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir()}
	for k, v := range lab.openrc {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	b, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

func labEnv(key string) string { return lab.openrc[key] }
