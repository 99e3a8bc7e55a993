package sysprep

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

// The generalized image's manifest lists the certificates of its own copy
// of the variables as sysprep's boot left them (Windows may enroll the 2023
// CAs while it runs), not the golden image's record.
func TestGeneralizedManifestReadsItsOwnVariables(t *testing.T) {
	golden, err := efivars.ReadFile(efivarstest.DebianMicrosoftVars)
	if err != nil {
		t.Fatal(err)
	}
	goldenCerts, err := golden.SecureBootCertificates()
	if err != nil {
		t.Fatal(err)
	}
	_, art := goldenImage(t, func(m *image.GeneralizedManifest) { m.SecureBootCertificates = &goldenCerts })
	in, err := readInput(art)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	efivarstest.WriteVars(t, out, efivarstest.Enrollment{Variable: "db", CommonName: efivars.WindowsUEFICA2023},
		efivarstest.Enrollment{Variable: "KEK", CommonName: efivars.KEKCA2023})
	disk := filepath.Join(out, "generalized.qcow2")
	if err := os.WriteFile(disk, []byte("QFI\xfbgeneralized"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := new(multistep.BasicStateBag)
	state.Put("ui", packersdk.TestUi(t))
	state.Put(stateInput, in)
	state.Put(qemuvm.StateDiskPath, disk)
	if (&stepWriteManifest{OutputDir: out, VMName: "generalized"}).Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	b, err := os.ReadFile(filepath.Join(out, "generalized.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m image.GeneralizedManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	c := m.SecureBootCertificates
	if c == nil || !efivars.Has(c.DB, efivars.WindowsUEFICA2023) || !efivars.Has(c.KEK, efivars.KEKCA2023) || !efivars.Has(c.DB, "Microsoft Corporation UEFI CA 2011") {
		t.Errorf("generalized manifest's certificates: %s", b)
	}
}
