package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

type fakeArtifact struct{ files []string }

func (a *fakeArtifact) BuilderId() string        { return image.SysprepBuilderID }
func (a *fakeArtifact) Files() []string          { return a.files }
func (a *fakeArtifact) Id() string               { return "standin.qcow2" }
func (a *fakeArtifact) String() string           { return "generalized stand-in" }
func (a *fakeArtifact) State(string) interface{} { return nil }
func (a *fakeArtifact) Destroy() error           { return nil }

// generalizedImage writes a winbake-sysprep output: disk, manifest, UEFI
// variables and TPM state.
func generalizedImage(t *testing.T) (string, *fakeArtifact) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "generalized")
	if err := os.MkdirAll(filepath.Join(dir, "tpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"efivars.fd": "vars", "tpm/tpm2-00.permall": "tpm state"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := testQcow2(t, filepath.Join(dir, "standin.qcow2"))
	m := image.GeneralizedManifest{Manifest: image.Manifest{Disk: "standin.qcow2", Format: "qcow2", SHA256: sum, Firmware: "uefi",
		EFIVars: "efivars.fd", TPM: true, TPMState: "tpm", Machine: "q35", DiskInterface: "sata", NetDevice: "e1000"}, Generalized: true, CloudbaseInit: true}
	b, _ := json.Marshal(m)
	manifest := filepath.Join(dir, "standin.json")
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, &fakeArtifact{files: []string{filepath.Join(dir, "standin.qcow2"), manifest}}
}

func argValue(args []qemuvm.QemuArg, flag, contains string) string {
	for _, a := range args {
		if a.Flag == flag && strings.Contains(a.Value, contains) {
			return a.Value
		}
	}
	return ""
}

// runVerify runs the post-processor with a DriverMock whose VM writes
// console to its serial log and powers off.
func runVerify(t *testing.T, console string) (*qemuvm.DriverMock, string, string, packersdk.Artifact, string, error) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("PACKER_TMP_DIR", tmp)
	dir, art := generalizedImage(t)
	code := filepath.Join(t.TempDir(), "OVMF_CODE_4M.fd")
	if err := os.WriteFile(code, []byte("code"), 0o644); err != nil {
		t.Fatal(err)
	}
	driver := &qemuvm.DriverMock{}
	driver.WaitVMFunc = func(context.Context) error {
		serial := strings.TrimPrefix(argValue(driver.StartVMArgs, "-serial", "file:"), "file:")
		return os.WriteFile(serial, []byte(console), 0o644)
	}
	p := &PostProcessor{driver: driver}
	if err := p.Configure(map[string]interface{}{
		"efi_firmware_code": code, "accelerator": "tcg", "keep_winrm": false, "timeout": "1m", "winrm_timeout": "1s",
		"build_passwords": []string{"Build-Pw-9"},
	}); err != nil {
		t.Fatal(err)
	}
	out := &testio.LockedBuffer{}
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: out, ErrorWriter: out}
	a, _, _, err := p.PostProcess(context.Background(), ui, art)
	return driver, dir, tmp, a, out.String(), err
}

func TestPostProcessBootsAThrowawayOverlayWithAConfigDrive(t *testing.T) {
	console := consoleWithCloudbaseInit + "INFO cloudbaseinit.init [-] Plugins execution done\n"
	driver, dir, tmp, a, log, err := runVerify(t, console)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if a == nil || a.Files()[0] != filepath.Join(dir, "standin.qcow2") {
		t.Errorf("artifact %v: the input is passed on", a)
	}
	args := driver.StartVMArgs
	if driver.OverlayBacking != filepath.Join(dir, "standin.qcow2") || !strings.HasPrefix(driver.OverlayPath, tmp) {
		t.Errorf("overlay %s backed by %s", driver.OverlayPath, driver.OverlayBacking)
	}
	if v := argValue(args, "-drive", "id=disk0"); !strings.Contains(v, driver.OverlayPath) {
		t.Errorf("the VM boots %q, not the overlay", v)
	}
	if v := argValue(args, "-drive", "config-drive.iso"); !strings.Contains(v, "media=cdrom") || !strings.HasPrefix(strings.TrimPrefix(v[strings.Index(v, "file=")+5:], ""), tmp) {
		t.Errorf("config drive %q", v)
	}
	if v := argValue(args, "-drive", "unit=1"); !strings.Contains(v, tmp) {
		t.Errorf("UEFI variables %q are not the instance's copy", v)
	}
	if !strings.HasPrefix(driver.TPMStateDir, tmp) || driver.StopTPMCalls != 1 {
		t.Errorf("TPM state %s, StopTPM %d", driver.TPMStateDir, driver.StopTPMCalls)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("instance files left: %v", left)
	}
	var recorded image.GeneralizedManifest
	if b, err := os.ReadFile(filepath.Join(dir, "standin.json")); err != nil || json.Unmarshal(b, &recorded) != nil {
		t.Fatalf("manifest: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "standin.qcow2")); fmt.Sprintf("%x", sha256.Sum256(b)) != recorded.SHA256 {
		t.Error("the disk changed")
	}
	for name, want := range map[string]string{"efivars.fd": "vars", "tpm/tpm2-00.permall": "tpm state"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("%s changed to %q", name, b)
		}
	}
	var r Report
	b, err := os.ReadFile(filepath.Join(dir, "standin.verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil || !r.Passed {
		t.Errorf("report %s", b)
	}
	for _, want := range []string{"Config drive (config-2)", "winbake-verify report for", "All checks passed.", "no WinRM over HTTPS (keep_winrm = false)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Build-Pw-9") || strings.Contains(string(b), "Build-Pw-9") {
		t.Error("the build password leaked")
	}
}

func TestPostProcessFailsWhenCloudbaseInitDidNotRun(t *testing.T) {
	_, dir, tmp, a, log, err := runVerify(t, "winbake-standin: setup: complete\nwinbake-standin: windows: ready\n")
	if err == nil || a != nil || !strings.Contains(err.Error(), "cloudbase-init ran its plugins") {
		t.Fatalf("artifact %v, error %v\n%s", a, err, log)
	}
	if !strings.Contains(log, "FAILED: cloudbase-init ran its plugins") {
		t.Errorf("log:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "standin.verify.json")); err != nil {
		t.Errorf("no report after a failed verification: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("instance files left: %v", left)
	}
}

func TestReadInputRefusesAGoldenImage(t *testing.T) {
	dir, art := generalizedImage(t)
	b, _ := os.ReadFile(filepath.Join(dir, "standin.json"))
	b = bytes.Replace(b, []byte(`"generalized":true`), []byte(`"generalized":false`), 1)
	if err := os.WriteFile(filepath.Join(dir, "standin.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readInput(art); err == nil || !strings.Contains(err.Error(), "is not generalized") {
		t.Errorf("error %v", err)
	}
}

// After winbake-compress, verify boots the qcow2 it wrote (the published
// file) with the manifest the artifact hands on.
func TestReadInputBootsTheCompressedFile(t *testing.T) {
	dir, _ := generalizedImage(t)
	manifest := filepath.Join(dir, "standin.json")
	qcow2 := image.Output{Path: "/clouds/standin.qcow2", Format: "qcow2", DiskFormat: "qcow2"}
	ddgz := image.Output{Path: "/clouds/standin.dd.gz", Format: "dd.gz", MaasFiletype: "ddgz"}

	in, err := readInput(&image.Compressed{Outputs: []image.Output{ddgz, qcow2}, Manifest: manifest})
	if err != nil {
		t.Fatal(err)
	}
	if in.DiskPath != qcow2.Path || in.ManifestPath != manifest || in.EFIVarsPath != filepath.Join(dir, "efivars.fd") {
		t.Errorf("disk %s manifest %s efivars %s; want the compressed qcow2 with the generalized image's manifest and firmware state", in.DiskPath, in.ManifestPath, in.EFIVarsPath)
	}
	if _, err := readInput(&image.Compressed{Outputs: []image.Output{ddgz}, Manifest: manifest}); err == nil ||
		!strings.Contains(err.Error(), "holds dd.gz: add qcow2 to its formats") {
		t.Errorf("dd.gz only: error %v", err)
	}
	if _, err := readInput(&image.Compressed{Outputs: []image.Output{qcow2}}); err == nil ||
		!strings.Contains(err.Error(), "carries no winbake manifest") {
		t.Errorf("no manifest: error %v", err)
	}
}

// testQcow2 writes a small, intact qcow2 disk (the post-processor checks
// its input with qemu-img check) and returns its SHA-256.
func testQcow2(t *testing.T, path string) string {
	t.Helper()
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", path, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
