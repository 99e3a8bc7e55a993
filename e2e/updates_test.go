//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// winbake-updates in a real Packer build on the stand-in VM (winbake-qemu
// refreshing a copy of the BIOS golden image): synthetic packages (real
// cabinets with Microsoft's metadata) served from the host over HTTP to
// 10.0.2.2, installed in servicing order with real reboots of the VM, and
// the manifest read back out of the guest; the builder's manifest lists the
// packages' KBs and the install ISO's checksum verified when the golden
// image was built.
func TestUpdatesOnStandinVM(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	isoData, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	// The golden image was installed from this ISO; the source_image build
	// carries its checksum on.
	isoChecksum := fmt.Sprintf("sha256:%x", sha256.Sum256(isoData))
	goldenDisk := filepath.Join(golden(t, goldenBIOS), "standin.qcow2")
	dir := t.TempDir()
	ssu := testguest.PackageFile{Name: "ssu-20348.2700-x64.cab", KB: "5044415", PackageName: "Package_for_ServicingStack_2700",
		Version: "20348.2700.1.0", Spec: winsim.PackageSpec{Result: "installs"}}
	pkgs := []testguest.PackageFile{
		{Name: "windows10.0-kb5000010-x64.cab", KB: "5000010", PackageName: "Package_for_KB5000010", Version: "10.0.1.0",
			Spec: winsim.PackageSpec{Result: "installs"}},
		{Name: "windows10.0-kb5000011-x64.cab", KB: "5000011", PackageName: "Package_for_KB5000011", Version: "10.0.1.0",
			Spec: winsim.PackageSpec{Result: "not_applicable"}},
		{Name: "windows10.0-kb5044281-x64.msu", KB: "5044281", PackageName: "Package_for_RollupFix", Version: "20348.2762.1.8",
			ProductName: "Windows Server 2022", AppliesTo: "Security Updates", Padding: 8 << 20,
			Spec: winsim.PackageSpec{Result: "reboot_required", Requires: ssu.Identity(), UBR: 2762}},
		ssu,
	}
	pkgDir := writePackages(t, filepath.Join(dir, "packages"), pkgs...)
	out := filepath.Join(dir, "out")
	manifestOut := filepath.Join(dir, "updates.json")
	start := time.Now()
	log, err := installed.run("", "build", "-var", "golden_disk="+goldenDisk, "-var", "winrm_password="+goldenPassword,
		"-var", "output_dir="+out, "-var", "packages_dir="+pkgDir,
		"-var", "manifest_out="+manifestOut, filepath.Join("testdata", "updates.pkr.hcl"))
	t.Logf("build took %s", time.Since(start).Round(time.Second))
	noQEMULeft(t, out)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	b, err := os.ReadFile(manifestOut)
	if err != nil {
		t.Fatalf("manifest: %v\n%s", err, log)
	}
	var m struct {
		Reboots         int `json:"reboots"`
		RebootsObserved int `json:"reboots_observed"`
		Packages        []struct {
			File, KB, Kind, Result string
			ExitCode               uint32 `json:"exit_code"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest %s: %v", b, err)
	}
	t.Logf("manifest from the guest:\n%s", b)
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "winbake-updates") || strings.Contains(l, "Rebooting") || strings.Contains(l, "Delivered") {
			t.Log(l)
		}
	}
	var order []string
	results := map[string]string{}
	for _, p := range m.Packages {
		order = append(order, p.File)
		results[p.File] = p.Result + "/" + p.Kind
	}
	wantOrder := []string{"ssu-20348.2700-x64.cab", "windows10.0-kb5044281-x64.msu", "windows10.0-kb5000010-x64.cab", "windows10.0-kb5000011-x64.cab"}
	if strings.Join(order, ",") != strings.Join(wantOrder, ",") {
		t.Errorf("manifest order %v, want %v", order, wantOrder)
	}
	want := map[string]string{
		"ssu-20348.2700-x64.cab":        "installed/servicing_stack",
		"windows10.0-kb5044281-x64.msu": "installed/cumulative",
		"windows10.0-kb5000010-x64.cab": "installed/other",
		"windows10.0-kb5000011-x64.cab": "not_applicable/other",
	}
	for f, w := range want {
		if results[f] != w {
			t.Errorf("%s: %s, want %s", f, results[f], w)
		}
	}
	if m.Reboots < 1 || m.RebootsObserved < m.Reboots {
		t.Errorf("reboots %d started, %d observed; want at least one real reboot", m.Reboots, m.RebootsObserved)
	}
	for _, s := range []string{"Serving 4 package(s)", "to the guest at 10.0.2.2", "SHA-256 verified", "The guest is back", "winbake-updates summary"} {
		if !strings.Contains(log, s) {
			t.Errorf("build log lacks %q:\n%s", s, log)
		}
	}

	// The builder's manifest, read with the builder's own type.
	raw, err := os.ReadFile(filepath.Join(out, "standin.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("builder manifest:\n%s", raw)
	var bm image.Manifest
	if err := json.Unmarshal(raw, &bm); err != nil {
		t.Fatal(err)
	}
	if bm.ISOChecksum != isoChecksum {
		t.Errorf("manifest iso_checksum %q, want %q", bm.ISOChecksum, isoChecksum)
	}
	var listed []string
	for _, u := range bm.Updates {
		listed = append(listed, u.File+"="+u.KB+"/"+u.Result)
	}
	var recorded []string
	for _, p := range m.Packages {
		recorded = append(recorded, p.File+"="+p.KB+"/"+p.Result)
	}
	if len(listed) != 4 || strings.Join(listed, ",") != strings.Join(recorded, ",") {
		t.Errorf("manifest updates %v, the guest's record %v", listed, recorded)
	}
	for _, kb := range []string{"KB5044415", "KB5044281", "KB5000010", "KB5000011"} {
		if !strings.Contains(strings.Join(listed, ","), "="+kb+"/") {
			t.Errorf("manifest updates %v lack %s", listed, kb)
		}
	}
	if bm.AdminUser != "Administrator" || bm.QemuGuestAgent == nil || *bm.QemuGuestAgent {
		t.Errorf("manifest admin_user %q qemu_guest_agent %v; want Administrator and false (the stand-in has no QEMU-GA)", bm.AdminUser, bm.QemuGuestAgent)
	}
}

// defer_failed on the stand-in VM: a package that keeps failing is retried
// after a real reboot, then stays in the image with the first-boot retry
// hooked into SetupComplete.cmd; the build succeeds.
func TestUpdatesDeferFailedOnStandinVM(t *testing.T) {
	t.Parallel()
	goldenDisk := filepath.Join(golden(t, goldenBIOS), "standin.qcow2")
	dir := t.TempDir()
	copyDir := filepath.Join(dir, "copied")
	if err := os.MkdirAll(copyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	good, broken := goodAndFailingPackages()
	pkgDir := writePackages(t, filepath.Join(dir, "packages"), good, broken)
	out := filepath.Join(dir, "out")
	start := time.Now()
	log, err := installed.run("", "build", "-var", "golden_disk="+goldenDisk, "-var", "winrm_password="+goldenPassword,
		"-var", "output_dir="+out, "-var", "packages_dir="+pkgDir,
		"-var", "copy_dir="+copyDir, filepath.Join("testdata", "updates-defer.pkr.hcl"))
	t.Logf("build took %s", time.Since(start).Round(time.Second))
	noQEMULeft(t, out)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(copyDir, name))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, log)
		}
		return string(b)
	}
	var m struct {
		Reboots  int  `json:"reboots"`
		Deferred bool `json:"deferred_to_first_boot"`
		Packages []struct {
			File, Result string
			Attempts     int
			ExitCodeHex  string `json:"exit_code_hex"`
		} `json:"packages"`
	}
	if err := json.Unmarshal([]byte(read("updates.json")), &m); err != nil {
		t.Fatal(err)
	}
	t.Logf("manifest: %+v", m)
	results := map[string]string{}
	for _, p := range m.Packages {
		results[p.File] = fmt.Sprintf("%s/%d/%s", p.Result, p.Attempts, p.ExitCodeHex)
	}
	if results[good.Name] != "installed/1/0x0" || results[broken.Name] != "deferred/2/0x800F0922" || !m.Deferred || m.Reboots != 1 {
		t.Errorf("manifest: %+v", m)
	}
	if sc := read("SetupComplete.cmd"); !strings.Contains(sc, `call C:\ProgramData\winbake\retry-updates.cmd`) {
		t.Errorf("SetupComplete.cmd %q", sc)
	}
	if list := read("pending-updates.txt"); list != `C:\ProgramData\winbake\updates\`+broken.Name+"\r\n" {
		t.Errorf("pending-updates.txt %q", list)
	}
}

// goodAndFailingPackages are two cumulative-update .cab files: one that
// installs, one whose install keeps failing (0x800F0922).
func goodAndFailingPackages() (good, failing testguest.PackageFile) {
	good = testguest.PackageFile{Name: "windows10.0-kb5000010-x64.cab", KB: "5000010", PackageName: "Package_for_KB5000010",
		Version: "10.0.1.0", Spec: winsim.PackageSpec{Result: "installs"}}
	failing = testguest.PackageFile{Name: "windows10.0-kb5000012-x64.cab", KB: "5000012", PackageName: "Package_for_KB5000012",
		Version: "10.0.1.0", Spec: winsim.PackageSpec{Result: "installs", Failures: 10}}
	return good, failing
}

// writePackages builds the stand-in update packages into dir (created)
// and returns dir.
func writePackages(t *testing.T, dir string, pkgs ...testguest.PackageFile) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		b, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
