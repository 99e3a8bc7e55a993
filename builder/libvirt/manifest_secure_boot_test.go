package libvirt

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/efivars"
	"github.com/winbake/packer-plugin-winbake/internal/efivars/efivarstest"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// The manifest lists the certificates of the NVRAM file kept as efivars.fd.
func TestManifestRecordsNVRAMCertificates(t *testing.T) {
	out := t.TempDir()
	efivarstest.WriteVars(t, out, efivarstest.Enrollment{Variable: "db", CommonName: efivars.WindowsUEFICA2023})
	c := &Config{OutputDir: out, KeepInPool: true, Pool: "default"}
	c.Firmware, c.VMName = qemuvm.FirmwareUEFI, "win"
	state := new(multistep.BasicStateBag)
	state.Put("ui", packersdk.TestUi(t))
	state.Put(stateDiskVolume, "win.qcow2")
	state.Put(stateKeptEFIVars, true)
	if (&stepWriteManifest{config: c}).Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	b, err := os.ReadFile(filepath.Join(out, "win.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m image.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.SecureBootCertificates == nil || !efivars.Has(m.SecureBootCertificates.DB, efivars.WindowsUEFICA2023) || !efivars.Has(m.SecureBootCertificates.KEK, "Microsoft Corporation KEK CA 2011") {
		t.Errorf("manifest %s", b)
	}
}
