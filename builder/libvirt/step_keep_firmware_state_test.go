package libvirt

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

func keepState(t *testing.T) (multistep.StateBag, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &out})
	return state, &out
}

func uefiTPMConfig(t *testing.T, uri string) *Config {
	t.Helper()
	tpm := true
	c := &Config{}
	c.Firmware, c.TPM, c.OutputDir = qemuvm.FirmwareUEFI, &tpm, t.TempDir()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	c.uri = u
	return c
}

// On a remote hypervisor the NVRAM and TPM state are files on that host:
// nothing is copied, nothing is claimed, and the build says so.
func TestKeepFirmwareStateRemoteSaysSo(t *testing.T) {
	state, out := keepState(t)
	c := uefiTPMConfig(t, "qemu+ssh://virthost/system")
	state.Put(stateNVRAMPath, "/var/lib/libvirt/qemu/nvram/packer-win_VARS.fd")
	if (&stepKeepFirmwareState{Config: c}).Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if _, ok := state.GetOk(stateKeptEFIVars); ok || !strings.Contains(out.String(), "stay on the remote hypervisor") {
		t.Errorf("kept %v, output %q", ok, out)
	}
	if entries, _ := os.ReadDir(c.OutputDir); len(entries) != 0 {
		t.Errorf("output directory %v", entries)
	}
}

// No NVRAM file in the live XML, or TPM state that is not there: the
// build fails naming what is missing, and a copy already made is removed
// by Cleanup.
func TestKeepFirmwareStateFailures(t *testing.T) {
	state, _ := keepState(t)
	c := uefiTPMConfig(t, "qemu:///system")
	if (&stepKeepFirmwareState{Config: c}).Run(context.Background(), state) != multistep.ActionHalt ||
		!strings.Contains(state.Get("error").(error).Error(), "did not name the domain's NVRAM file") {
		t.Errorf("error %v", state.Get("error"))
	}

	state, _ = keepState(t)
	nvram := filepath.Join(t.TempDir(), "VARS.fd")
	if err := os.WriteFile(nvram, []byte("vars"), 0o600); err != nil {
		t.Fatal(err)
	}
	state.Put(stateNVRAMPath, nvram)
	state.Put(stateDomainUUID, "0b0e5c1a-0000-4000-8000-000000000001")
	step := &stepKeepFirmwareState{Config: c, SwtpmDir: t.TempDir()}
	if step.Run(context.Background(), state) != multistep.ActionHalt || !strings.Contains(state.Get("error").(error).Error(), "keeping the TPM state") {
		t.Fatalf("error %v", state.Get("error"))
	}
	if _, err := os.Stat(filepath.Join(c.OutputDir, qemuvm.EFIVarsName)); err != nil {
		t.Fatalf("the UEFI variables were not copied before the TPM failure: %v", err)
	}
	state.Put(multistep.StateHalted, true)
	step.Cleanup(state)
	if entries, _ := os.ReadDir(c.OutputDir); len(entries) != 0 {
		t.Errorf("left after the failed build: %v", entries)
	}
}
