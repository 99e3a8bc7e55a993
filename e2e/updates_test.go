//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testguest/winsim"
)

// winbake-updates in a real Packer build on the stand-in VM: synthetic
// packages (real cabinets with Microsoft's metadata) served from the host
// over HTTP to 10.0.2.2, installed in servicing order with real reboots of
// the VM, and the manifest read back out of the guest.
func TestUpdatesOnStandinVM(t *testing.T) {
	iso := standinISO(t)
	dir := t.TempDir()
	pkgDir := filepath.Join(dir, "packages")
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
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
	for _, p := range pkgs {
		b, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkgDir, p.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	manifestOut := filepath.Join(dir, "updates.json")
	start := time.Now()
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out, "-var", "packages_dir="+pkgDir,
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
}
