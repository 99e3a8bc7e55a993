//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// openstackLab starts (or reuses) the Keystone and glance-api of
// scripts/openstack-lab.sh and returns the openrc variables of its packer
// user.
func openstackLab(t *testing.T) map[string]string {
	t.Helper()
	script := mustAbs(t, filepath.Join("..", "scripts", "openstack-lab.sh"))
	dir := os.Getenv("WINBAKE_OPENSTACK_LAB")
	if dir == "" {
		dir = mustAbs(t, filepath.Join("..", "build", "openstack-lab"))
	}
	wasUp := exec.Command("bash", script, "status", dir).Run() == nil
	if out, err := exec.Command("bash", script, "start", dir).CombinedOutput(); err != nil {
		t.Fatalf("openstack-lab.sh start: %v\n%s", err, out)
	}
	if !wasUp {
		t.Cleanup(func() { _ = exec.Command("bash", script, "stop", dir).Run() })
	}
	f, err := os.Open(filepath.Join(dir, "openrc"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(s.Text(), "export "), "="); ok {
			env[k] = v
		}
	}
	return env
}

// openstackJSON runs the openstack CLI with env and decodes its JSON output.
func openstackJSON(t *testing.T, env map[string]string, out interface{}, args ...string) error {
	cmd := exec.Command("openstack", append(args, "-f", "json")...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("openstack %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return json.Unmarshal(b, out)
}

// Real Packer: file builder → winbake-compress → winbake-glance with the
// OS_* variables, the way CI runs it (no terminal, -machine-readable) and
// the way a person runs it (in a terminal, so Packer draws progress bars
// and closes each bar once; a second Close crashed Packer). The image is
// active with the manifest's properties, and the debug log never contains
// the password.
func TestGlancePublishesThroughPacker(t *testing.T) {
	t.Parallel()
	env := openstackLab(t)
	for _, terminal := range []bool{false, true} {
		t.Run(map[bool]string{false: "log", true: "terminal"}[terminal], func(t *testing.T) {
			publishThroughPacker(t, env, terminal)
		})
	}
}

func publishThroughPacker(t *testing.T, env map[string]string, terminal bool) {
	dir := t.TempDir()
	input := filepath.Join(dir, "input.raw")
	writeRawDisk(t, input)
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// The winbake-qemu manifest of the build, next to the compressed disk.
	manifest := `{"disk":"ws2022.qcow2","format":"qcow2","sha256":"ab","firmware":"uefi","tpm":true,"machine":"q35",
 "disk_interface":"virtio-blk","net_device":"virtio-net","accelerator":"tcg",
 "windows":{"image_name":"Windows Server 2022 SERVERDATACENTER","edition_id":"ServerDatacenter","installation_type":"Server","version":"10.0.20348.587","arch":"amd64"}}`
	if err := os.WriteFile(filepath.Join(out, "ws2022.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("winbake-e2e %d", time.Now().UnixNano())
	logPath := filepath.Join(dir, "packer.log")

	args := []string{"build", "-var", "input_disk=" + input, "-var", "output_dir=" + out, "-var", "image_name=" + name,
		filepath.Join("testdata", "glance-file.pkr.hcl")}
	if !terminal {
		args = append([]string{args[0], "-machine-readable"}, args[1:]...)
	}
	cmdEnv := append(installed.environ(), "PACKER_LOG=1", "PACKER_LOG_PATH="+logPath)
	for k, v := range env {
		cmdEnv = append(cmdEnv, k+"="+v)
	}
	stdout, err := installed.command(terminal, cmdEnv, args...)
	logText, _ := os.ReadFile(logPath)
	var created []struct{ ID string }
	listErr := openstackJSON(t, env, &created, "image", "list", "--name", name)
	t.Cleanup(func() {
		for _, img := range created {
			cmd := exec.Command("openstack", "image", "delete", img.ID)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir()}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			_ = cmd.Run()
		}
	})
	if err != nil {
		t.Fatalf("packer build: %v\n%s\nlog:\n%s", err, stdout, logText)
	}
	if strings.Contains(string(stdout), "panic:") || strings.Contains(string(logText), "panic:") {
		t.Fatalf("Packer or the plugin panicked:\n%s\nlog:\n%s", stdout, logText)
	}

	password := env["OS_PASSWORD"]
	if password == "" || len(logText) == 0 {
		t.Fatalf("no password (%q) or no log (%d bytes) to check", password, len(logText))
	}
	if bytes.Contains(logText, []byte(password)) || bytes.Contains(stdout, []byte(password)) {
		t.Errorf("the OpenStack password appears in the Packer output or PACKER_LOG")
	}

	var imageID string
	if terminal {
		// No machine-readable output in a terminal: the image is the one
		// of that name.
		if listErr != nil || len(created) != 1 {
			t.Fatalf("images named %q: %v (%v)", name, created, listErr)
		}
		imageID = created[0].ID
	} else {
		// Without a terminal Packer draws no bars: winbake writes the
		// upload's progress as lines, at least its last one.
		if !regexp.MustCompile(`ws2022-compressed\.qcow2: [0-9.]+ [KMG]?i?B in [0-9.]+m?s \(`).Match(stdout) {
			t.Errorf("no progress line for the upload in the build output:\n%s", stdout)
		}
		imageID = machineReadableGlanceID(t, stdout)
	}

	var img struct {
		Status     string                 `json:"status"`
		DiskFormat string                 `json:"disk_format"`
		Name       string                 `json:"name"`
		Visibility string                 `json:"visibility"`
		Properties map[string]interface{} `json:"properties"`
	}
	if err := openstackJSON(t, env, &img, "image", "show", imageID); err != nil {
		t.Fatal(err)
	}
	if img.Status != "active" || img.DiskFormat != "qcow2" || img.Name != name || img.Visibility != "private" {
		t.Errorf("image %s: status %s disk_format %s name %q visibility %s; want active qcow2 %q private", imageID, img.Status, img.DiskFormat, img.Name, img.Visibility, name)
	}
	for k, v := range map[string]string{"os_type": "windows", "os_version": "2022", "hw_disk_bus": "virtio", "hw_vif_model": "virtio",
		"hw_firmware_type": "uefi", "hw_tpm_version": "2.0", "built_by": "packer"} {
		if got, _ := img.Properties[k].(string); got != v {
			t.Errorf("property %s = %q, want %q", k, got, v)
		}
	}
}

// machineReadableGlanceID reads "<time>,<build>,artifact,<n>,id,<image id>"
// of the artifact whose builder-id is winbake-glance's.
func machineReadableGlanceID(t *testing.T, stdout []byte) string {
	t.Helper()
	fields := map[string]map[string]string{}
	for _, line := range strings.Split(string(stdout), "\n") {
		f := strings.SplitN(line, ",", 6)
		if len(f) == 6 && f[2] == "artifact" {
			if fields[f[3]] == nil {
				fields[f[3]] = map[string]string{}
			}
			fields[f[3]][f[4]] = f[5]
		}
	}
	for _, a := range fields {
		if a["builder-id"] == "winbake.post-processor.glance" {
			if a["id"] == "" || !strings.Contains(a["string"], "http://127.0.0.1:") {
				t.Fatalf("machine-readable artifact: id %q string %q\n%s", a["id"], a["string"], stdout)
			}
			return a["id"]
		}
	}
	t.Fatalf("no winbake-glance artifact in the machine-readable output:\n%s", stdout)
	return ""
}
