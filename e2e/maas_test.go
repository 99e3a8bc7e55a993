//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/maasserver"
)

// maasTemplate hands a raw disk from Packer's file builder to
// winbake-compress and the result to winbake-maas.
const maasTemplate = `
variable "input_disk" { type = string }
variable "output_dir" { type = string }
variable "maas_url" { type = string }
variable "maas_api_key" { type = string }
variable "format" { type = string }

source "file" "disk" {
  source = var.input_disk
  target = "${var.output_dir}/disk.raw"
}

build {
  sources = ["source.file.disk"]

  post-processors {
    post-processor "winbake-compress" {
      format = var.format
      output = "${var.output_dir}/windows.${var.format}"
    }
    post-processor "winbake-maas" {
      url     = var.maas_url
      api_key = var.maas_api_key
      release = "win2022"
    }
    post-processor "manifest" {
      output = "${var.output_dir}/manifest.json"
    }
  }
}
`

// runMAASBuild runs packer build of maasTemplate with PACKER_LOG=1 and
// returns the combined output (which includes Packer's and the plugin's
// debug log).
func runMAASBuild(t *testing.T, srv *maasserver.Server, apiKey, format, dir string) (string, error) {
	t.Helper()
	cmd, out := maasBuildCommand(t, srv, apiKey, format, dir)
	err := cmd.Run()
	return out.String(), err
}

// maasBuildCommand prepares the packer build of runMAASBuild.
func maasBuildCommand(t *testing.T, srv *maasserver.Server, apiKey, format, dir string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	input := filepath.Join(dir, "input.raw")
	// 9 MiB of incompressible bytes: the dd.gz spans three 4 MiB chunks.
	disk := make([]byte, 10<<20)
	if _, err := rand.Read(disk[:9<<20]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(input, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(dir, "maas.pkr.hcl")
	if err := os.WriteFile(tmpl, []byte(maasTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(installed.packer, "build",
		"-var", "input_disk="+input, "-var", "output_dir="+filepath.Join(dir, "out"),
		"-var", "maas_url="+srv.MAASURL(), "-var", "maas_api_key="+apiKey, "-var", "format="+format,
		tmpl)
	cmd.Dir = dir
	cmd.Env = append(installed.environ(), "PACKER_LOG=1")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

func TestMAASPublishesCompressedImage(t *testing.T) {
	srv := maasserver.New(maasserver.Options{PollsUntilComplete: 1})
	defer srv.Close()
	key := maasserver.DefaultAdminKey
	dir := t.TempDir()

	log, err := runMAASBuild(t, srv, key.String(), "dd.gz", dir)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	if strings.Contains(log, key.Secret) || strings.Contains(log, key.String()) {
		t.Errorf("the API key's secret appears in the PACKER_LOG=1 output")
	}
	if !strings.Contains(log, "is complete: deploy it as OS windows, release win2022") {
		t.Errorf("the output does not show winbake-maas finishing:\n%s", log)
	}
	if os.Getenv("WINBAKE_E2E_MAAS_LOG") != "" {
		_ = os.WriteFile(os.Getenv("WINBAKE_E2E_MAAS_LOG"), []byte(log), 0o644)
	}

	res := srv.Resources()
	if len(res) != 1 || res[0].Name != "windows/win2022" || res[0].Arch != "amd64/generic" || len(res[0].Sets) != 1 {
		t.Fatalf("MAAS resources = %+v, want windows/win2022 amd64/generic with one set\n%s", res, log)
	}
	f := res[0].Sets[0].Files[0]
	if f.Filetype != "ddgz" || !f.Complete {
		t.Errorf("file = %+v, want a complete ddgz", f)
	}
	gz, err := os.ReadFile(filepath.Join(dir, "out", "windows.dd.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(srv.Content(f.ID), gz) {
		t.Errorf("MAAS holds %d bytes that differ from the %d-byte windows.dd.gz", len(srv.Content(f.ID)), len(gz))
	}
	chunks := srv.Chunks(f.ID)
	if len(chunks) < 2 {
		t.Errorf("uploaded in %d chunk(s): %v", len(chunks), chunks)
	}
	for i, c := range chunks[:len(chunks)-1] {
		if c != 4<<20 {
			t.Errorf("chunk %d is %d bytes, want 4 MiB: %v", i+1, c, chunks)
		}
	}
	if n, reqs := len(srv.Nonces()), len(srv.Requests()); n != reqs {
		t.Errorf("%d distinct nonces over %d requests", n, reqs)
	}

	var manifest struct {
		Builds []struct {
			ArtifactID  string `json:"artifact_id"`
			BuilderType string `json:"builder_type"`
		} `json:"builds"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "out", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Builds) != 1 || manifest.Builds[0].ArtifactID != strconv.Itoa(res[0].ID) {
		t.Errorf("manifest artifact_id is not the MAAS resource id %d:\n%s", res[0].ID, raw)
	}
	if bytes.Contains(raw, []byte(key.Secret)) {
		t.Error("the manifest contains the API key's secret")
	}
}

func TestMAASBadAPIKey(t *testing.T) {
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	k := maasserver.DefaultAdminKey
	const wrongSecret = "NotTheRightSecret42"
	log, err := runMAASBuild(t, srv, k.Consumer+":"+k.Token+":"+wrongSecret, "dd.gz", t.TempDir())
	if err == nil {
		t.Fatalf("packer build succeeded with a wrong API key:\n%s", log)
	}
	folded := strings.Join(strings.Fields(log), " ")
	if !strings.Contains(folded, "Unauthorized") || !strings.Contains(folded, "check api_key") {
		t.Errorf("the build output does not say MAAS refused api_key:\n%s", log)
	}
	if strings.Contains(log, wrongSecret) {
		t.Errorf("the API key's secret appears in the PACKER_LOG=1 output")
	}
	if res := srv.Resources(); len(res) != 0 {
		t.Errorf("MAAS resources left: %+v", res)
	}
}

func TestMAASRefusesQcow2(t *testing.T) {
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	log, err := runMAASBuild(t, srv, maasserver.DefaultAdminKey.String(), "qcow2", t.TempDir())
	if err == nil {
		t.Fatalf("packer build published a qcow2 to MAAS:\n%s", log)
	}
	folded := strings.Join(strings.Fields(log), " ")
	if !strings.Contains(folded, `winbake-compress wrote qcow2, which MAAS cannot deploy; add "dd.gz" to winbake-compress's formats`) {
		t.Errorf("the build output does not name the compress format to use:\n%s", log)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests reached MAAS", n)
	}
}

// Ctrl-C during the upload: Packer cancels the post-processor, which deletes
// the half-uploaded resource.
func TestMAASInterruptDeletesTheResource(t *testing.T) {
	var cmd *exec.Cmd
	interrupted := make(chan struct{})
	clientGaveUp := false
	srv := maasserver.New(maasserver.Options{OnChunk: func(n int, r *http.Request) {
		if n != 2 {
			return
		}
		// Ctrl-C in a terminal interrupts the whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		close(interrupted)
		// Hold the chunk until the client gives up on it (bounded, so a
		// client that never does fails the test instead of hanging it).
		// The server notices a closed connection only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
			clientGaveUp = true
		case <-time.After(3 * time.Minute):
		}
	}})
	defer srv.Close()
	cmd, out := maasBuildCommand(t, srv, maasserver.DefaultAdminKey.String(), "dd.gz", t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	log := out.String()
	select {
	case <-interrupted:
	default:
		t.Fatalf("the build ended before the second chunk (err %v):\n%s", err, log)
	}
	if err == nil {
		t.Fatalf("packer build succeeded despite the interrupt:\n%s", log)
	}
	if !clientGaveUp {
		t.Errorf("winbake-maas did not abandon the chunk in flight when the build was interrupted:\n%s", log)
	}
	if !strings.Contains(log, "Deleting the incomplete MAAS boot resource") {
		t.Errorf("the output does not show the cleanup:\n%s", log)
	}
	if res := srv.Resources(); len(res) != 0 {
		t.Errorf("the half-uploaded resource is left in MAAS after Ctrl-C: %+v\n%s", res, log)
	}
	deletes := 0
	for _, r := range srv.Requests() {
		if r.Method == "DELETE" && r.Status == http.StatusNoContent {
			deletes++
		}
	}
	if deletes != 1 {
		t.Errorf("%d successful DELETEs, want 1", deletes)
	}
}
