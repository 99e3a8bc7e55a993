package sysprep

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// fakeArtifact is a builder artifact as Packer hands it over RPC.
type fakeArtifact struct {
	files []string
	state map[string]interface{}
}

func (a *fakeArtifact) BuilderId() string             { return image.QemuBuilderID }
func (a *fakeArtifact) Files() []string               { return a.files }
func (a *fakeArtifact) Id() string                    { return "golden" }
func (a *fakeArtifact) String() string                { return "golden" }
func (a *fakeArtifact) State(name string) interface{} { return a.state[name] }
func (a *fakeArtifact) Destroy() error                { return nil }

// goldenImage writes a UEFI+TPM golden image's files and manifest.
func goldenImage(t *testing.T, mutate func(m *image.GeneralizedManifest)) (dir string, art *fakeArtifact) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "output-golden")
	if err := os.MkdirAll(filepath.Join(dir, "tpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"efivars.fd": "vars", "tpm/tpm2-00.permall": "tpm state"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := testQcow2(t, filepath.Join(dir, "standin.qcow2"))
	m := image.GeneralizedManifest{Manifest: image.Manifest{Disk: "standin.qcow2", Format: "qcow2", SHA256: sum, Firmware: "uefi",
		EFIVars: "efivars.fd", TPM: true, TPMState: "tpm", Machine: "q35", DiskInterface: "sata", NetDevice: "e1000"}}
	if mutate != nil {
		mutate(&m)
	}
	b, _ := json.Marshal(m)
	manifest := filepath.Join(dir, "standin.json")
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, &fakeArtifact{files: []string{filepath.Join(dir, "standin.qcow2"), manifest}}
}

func TestReadInput(t *testing.T) {
	dir, art := goldenImage(t, nil)
	in, err := readInput(art)
	if err != nil {
		t.Fatal(err)
	}
	if in.DiskPath != filepath.Join(dir, "standin.qcow2") || in.EFIVarsPath != filepath.Join(dir, "efivars.fd") ||
		in.TPMStateDir != filepath.Join(dir, "tpm") || in.Name != "standin" {
		t.Errorf("input %+v", in)
	}
	for _, tc := range []struct {
		name   string
		mutate func(m *image.GeneralizedManifest)
		want   string
	}{
		{"generalized", func(m *image.GeneralizedManifest) { m.Generalized = true }, "is generalized already"},
		{"no disk", func(m *image.GeneralizedManifest) { m.Disk = "gone.qcow2" }, "input disk: stat"},
		{"raw", func(m *image.GeneralizedManifest) { m.Format = "raw" }, "names no qcow2 disk"},
		{"no tpm state", func(m *image.GeneralizedManifest) { m.TPMState = "missing" }, "TPM state \"missing\""},
		{"firmware", func(m *image.GeneralizedManifest) { m.Firmware = "coreboot" }, `firmware "coreboot" is neither uefi nor bios`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, art := goldenImage(t, tc.mutate)
			if _, err := readInput(art); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := readInput(&fakeArtifact{files: []string{"/tmp/x.vmdk"}}); err == nil || !strings.Contains(err.Error(), "has no winbake manifest") {
		t.Errorf("foreign artifact: %v", err)
	}
}

func TestOutputDirectoryMustLeaveTheInput(t *testing.T) {
	dir, art := goldenImage(t, nil)
	in, err := readInput(art)
	if err != nil {
		t.Fatal(err)
	}
	p := &PostProcessor{}
	out, name, err := p.outputPaths(in)
	if err != nil || out != dir+"-sysprep" || name != "standin" {
		t.Errorf("defaults: %s %s %v", out, name, err)
	}
	for _, bad := range []string{dir, filepath.Join(dir, "sub")} {
		p.config.OutputDir = bad
		if _, _, err := p.outputPaths(in); err == nil || !strings.Contains(err.Error(), "output_directory") {
			t.Errorf("output_directory %s: %v", bad, err)
		}
	}
}

func testState(t *testing.T, driver qemuvm.Driver, in *inputImage) multistep.StateBag {
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &testio.LockedBuffer{}, ErrorWriter: &testio.LockedBuffer{}})
	state.Put(qemuvm.StateDriver, driver)
	state.Put(stateInput, in)
	return state
}

// The golden disk is copied with the driver; a failed copy leaves nothing.
func TestStepCopyDisk(t *testing.T) {
	_, art := goldenImage(t, nil)
	in, _ := readInput(art)
	out := filepath.Join(t.TempDir(), "copy.qcow2")
	driver := &qemuvm.DriverMock{}
	state := testState(t, driver, in)
	step := &stepCopyDisk{Path: out}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if driver.ConvertSrc != in.DiskPath || driver.ConvertDst != out || state.Get(qemuvm.StateDiskPath) != out {
		t.Errorf("convert %s -> %s", driver.ConvertSrc, driver.ConvertDst)
	}

	driver = &qemuvm.DriverMock{ConvertErr: errors.New("qemu-img convert: no space left")}
	state = testState(t, driver, in)
	if (&stepCopyDisk{Path: out}).Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("a failed copy did not halt")
	}
	if err := state.Get("error").(error); !strings.Contains(err.Error(), "copying the golden disk: qemu-img convert: no space left") {
		t.Errorf("error %v", err)
	}
}

// efivars.fd and the TPM state are copied, the VM gets the copy of the
// variables, and a failed run removes the copies.
func TestStepCopyFirmwareState(t *testing.T) {
	_, art := goldenImage(t, nil)
	in, _ := readInput(art)
	out := t.TempDir()
	state := testState(t, &qemuvm.DriverMock{}, in)
	step := &stepCopyFirmwareState{OutputDir: out, Code: qemuvm.OVMF{Code: "/usr/share/OVMF/OVMF_CODE_4M.fd", CodeFormat: "raw"}}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	ovmf := state.Get(qemuvm.StateOVMF).(qemuvm.OVMF)
	if ovmf.Vars != filepath.Join(out, "efivars.fd") || ovmf.Code != "/usr/share/OVMF/OVMF_CODE_4M.fd" || ovmf.VarsFormat != "raw" {
		t.Errorf("OVMF %+v", ovmf)
	}
	if b, err := os.ReadFile(filepath.Join(out, "tpm", "tpm2-00.permall")); err != nil || string(b) != "tpm state" {
		t.Errorf("TPM state copy: %q %v", b, err)
	}
	state.Put(multistep.StateHalted, true)
	step.Cleanup(state)
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("left after a failed run: %v", entries)
	}
}

// A VM that does not power off within timeout is killed and the run fails
// naming the field.
func TestStepSysprepTimeout(t *testing.T) {
	_, state, _ := standinState(t)
	// QEMU never exits, as when Windows hangs in sysprep.
	driver := &qemuvm.DriverMock{WaitVMFunc: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	state.Put(qemuvm.StateDriver, driver)
	step := &stepSysprep{Timeout: 300 * time.Millisecond, Poll: 50 * time.Millisecond}
	if step.Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("no timeout")
	}
	if err := state.Get("error").(error); !strings.Contains(err.Error(), "within 300ms; QEMU was killed") || !strings.HasPrefix(err.Error(), "timeout: sysprep did not") {
		t.Errorf("error %v", err)
	}
	if driver.StopVMCalls != 1 {
		t.Errorf("StopVM called %d times", driver.StopVMCalls)
	}
}

// Windows without the Appx module (the script's marker line): nothing to
// remove, said once, and no removal attempted.
func TestStepRemoveAppxWithoutAppxModule(t *testing.T) {
	comm := &packersdk.MockCommunicator{StartStdout: noAppxMarker + "\r\n"}
	out := &testio.LockedBuffer{}
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: out, ErrorWriter: out})
	state.Put("communicator", comm)
	if (&stepRemoveAppx{Names: DefaultRemoveAppxPackages}).Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if got := state.Get(stateRemovedAppx).([]string); len(got) != 0 {
		t.Errorf("removed %q", got)
	}
	if !strings.Contains(out.String(), "no Appx module") || strings.Contains(out.String(), "Removed") {
		t.Errorf("UI output: %s", out)
	}
	if !strings.Contains(comm.StartCmd.Command, "-EncodedCommand") {
		t.Errorf("command %q", comm.StartCmd.Command)
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
