//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/standin"
)

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The stand-in ISO installed into a golden disk by winbake-qemu, then
// generalized by winbake-sysprep with real Packer under TCG (UEFI with a
// TPM): the stand-in powers off generalized, the golden disk keeps its
// checksum, and the output is a standalone qcow2 with its own manifest,
// efivars and TPM state. It starts from the shared UEFI golden image,
// built with WinRM over HTTPS and its own certificate (winrm_use_ssl):
// winbake-sysprep trusts that certificate from the manifest and removes it,
// with the listener and its firewall rule, before it generalizes over NTLM
// with encrypted messages.
func TestSysprepGeneralizesStandinCopy(t *testing.T) {
	t.Parallel()
	golden := golden(t, goldenUEFI)
	generalized := filepath.Join(t.TempDir(), "generalized")
	const password = goldenPassword
	start := time.Now()
	log, err := installed.run("", "build", "-var", "golden_dir="+golden, "-var", "sysprep_dir="+generalized,
		"-var", "winrm_password="+password, filepath.Join("testdata", "sysprep-golden.pkr.hcl"))
	t.Logf("sysprep took %s", time.Since(start).Round(time.Second))
	noQEMULeft(t, golden)
	noQEMULeft(t, generalized)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	if strings.Contains(log, password) {
		t.Errorf("the WinRM password appears in the build log")
	}
	for _, want := range []string{"Nothing is pending", "Trimming the free space of C:",
		"Returning WinRM to Windows' defaults (HTTPS listener, certificate", "WinRM is back to Windows' defaults", "sysprep generalized Windows and powered the VM off"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	var gm struct{ Disk, SHA256 string }
	readJSON(t, filepath.Join(golden, "standin.json"), &gm)
	if got := fileSHA256(t, filepath.Join(golden, gm.Disk)); got != gm.SHA256 {
		t.Errorf("golden disk checksum %s, manifest says %s: the golden disk changed", got, gm.SHA256)
	}

	var m struct {
		Disk, SHA256, Firmware, EFIVars string
		TPM                             bool
		TPMState                        string `json:"tpm_state"`
		Generalized                     bool
		Source                          struct{ Disk, SHA256 string }
		WinRM                           struct{ Transport, Thumbprint string } `json:"winrm"`
		ImageWinRM                      struct {
			BuildRemoved bool `json:"build_removed"`
		} `json:"image_winrm"`
		// The certificates of the image's efivars.fd (Debian's store
		// without enrolled keys here: empty lists).
		SecureBootCertificates *struct{ PK, KEK, DB, DBX []struct{ Subject string } } `json:"secure_boot_certificates"`
	}
	b := readJSON(t, filepath.Join(generalized, "standin.json"), &m)
	if !m.Generalized || m.Disk != "standin.qcow2" || m.Firmware != "uefi" || !m.TPM || m.EFIVars != "efivars.fd" ||
		m.TPMState != "tpm" || m.Source.SHA256 != gm.SHA256 || m.SHA256 == gm.SHA256 || m.WinRM.Transport != "https" || len(m.WinRM.Thumbprint) != 40 || !m.ImageWinRM.BuildRemoved {
		t.Errorf("generalized manifest %s", b)
	}
	if c := m.SecureBootCertificates; c == nil || c.PK == nil || c.KEK == nil || c.DB == nil || c.DBX == nil {
		t.Errorf("generalized manifest without the Secure Boot certificates of its efivars.fd: %s", b)
	}
	if strings.Contains(string(b), password) {
		t.Error("the password is in the manifest")
	}
	disk := filepath.Join(generalized, m.Disk)
	if got := fileSHA256(t, disk); got != m.SHA256 {
		t.Errorf("generalized disk checksum %s, manifest says %s", got, m.SHA256)
	}
	info, err := exec.Command("qemu-img", "info", "--output=json", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(info), "backing-filename") {
		t.Errorf("the generalized disk has a backing file: %s", info)
	}
	for _, f := range []string{"efivars.fd", "tpm"} {
		if _, err := os.Stat(filepath.Join(generalized, f)); err != nil {
			t.Errorf("%s not kept with the generalized image: %v", f, err)
		}
	}
	for _, gone := range []string{"qmp.sock", "qemu.pid", "tpm/swtpm.sock"} {
		if _, err := os.Stat(filepath.Join(generalized, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left in the output directory", gone)
		}
	}

	// The stand-in records what Setup saw on its Windows partition.
	img, err := standin.RawImage(disk, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := img.State(windowsPartition(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if st.Sysprep != "generalized" {
		t.Errorf("stand-in state: sysprep %q, want generalized", st.Sysprep)
	}
}

func readJSON(t *testing.T, path string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// windowsPartition is the largest partition of the image: Windows' own.
func windowsPartition(t *testing.T, img *standin.Image) int {
	t.Helper()
	best := standin.Partition{}
	for _, p := range img.Partitions {
		if p.Size > best.Size {
			best = p
		}
	}
	if best.Number == 0 {
		t.Fatalf("no partition on %s", img.Path)
	}
	return best.Number
}

// BIOS without a TPM, with cloudbase-init: the MSI goes up over WinRM, is
// installed, and sysprep runs with cloudbase-init's answer file. It starts
// from the shared BIOS golden image.
func TestSysprepCloudbaseInitBIOS(t *testing.T) {
	t.Parallel()
	golden := golden(t, goldenBIOS)
	dir := t.TempDir()
	generalized := filepath.Join(dir, "generalized")
	msi := filepath.Join(dir, "CloudbaseInitSetup_Stable_x64.msi")
	if err := os.WriteFile(msi, []byte("stand-in cloudbase-init MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := installed.run("", "build", "-var", "golden_dir="+golden, "-var", "sysprep_dir="+generalized,
		"-var", "cloudbase_init_msi="+msi, "-var", "winrm_password="+goldenPassword,
		filepath.Join("testdata", "sysprep-golden.pkr.hcl"))
	noQEMULeft(t, generalized)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	for _, want := range []string{"Installing cloudbase-init", `cloudbase-init-unattend.conf`,
		`/unattend:"C:\Program Files\Cloudbase Solutions\Cloudbase-Init\conf\Unattend.xml"`, "sysprep generalized Windows and powered the VM off"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	var m struct {
		Firmware      string
		TPM           bool
		Generalized   bool
		CloudbaseInit bool `json:"cloudbase_init"`
	}
	b := readJSON(t, filepath.Join(generalized, "standin.json"), &m)
	if !m.Generalized || !m.CloudbaseInit || m.Firmware != "bios" || m.TPM {
		t.Errorf("manifest %s", b)
	}
	if _, err := os.Stat(filepath.Join(generalized, "efivars.fd")); !os.IsNotExist(err) {
		t.Errorf("efivars.fd in a BIOS image's output: %v", err)
	}
}
