//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// qcow2Allocation is the number and size of the clusters a qcow2 disk
// holds (qemu-img check's allocated-clusters, qemu-img info's
// cluster-size).
func qcow2Allocation(t *testing.T, disk string) (clusters, clusterSize int64) {
	t.Helper()
	var check struct {
		Allocated int64 `json:"allocated-clusters"`
	}
	var info struct {
		ClusterSize int64 `json:"cluster-size"`
	}
	for _, c := range []struct {
		args []string
		into any
	}{{[]string{"check", "--output=json", disk}, &check}, {[]string{"info", "--output=json", disk}, &info}} {
		out, err := exec.Command("qemu-img", c.args...).Output()
		if err != nil {
			t.Fatalf("qemu-img %s: %v", strings.Join(c.args, " "), err)
		}
		if err := json.Unmarshal(out, c.into); err != nil {
			t.Fatal(err)
		}
	}
	return check.Allocated, info.ClusterSize
}

// winbake-sysprep retrims C: of a copy of a golden image whose build
// installed (and then removed) a 24 MiB update that needed a restart (so
// the guest had written it to its disk, as a cumulative update is written
// before Windows restarts): on the virtio-blk disk
// winbake attaches with an 8 KiB unmap granularity, the stand-in retrims as
// Windows does, and the generalized qcow2 holds at least the package's
// clusters fewer than the golden one. Under TCG neither VM had Hyper-V
// enlightenments, which both manifests record.
func TestSysprepTrimShrinksUpdatedImage(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	dir := t.TempDir()
	golden, generalized := filepath.Join(dir, "golden"), filepath.Join(dir, "generalized")
	const padding = 24 << 20
	pkgDir := writePackages(t, filepath.Join(dir, "packages"), testguest.PackageFile{
		Name: "windows10.0-kb5000020-x64.cab", KB: "5000020", PackageName: "Package_for_KB5000020", Version: "10.0.1.0",
		Padding: padding, Spec: winsim.PackageSpec{Result: "reboot_required"},
	})
	start := time.Now()
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "virtio_win_iso="+virtioWinWithAgent(t), "-var", "packages_dir="+pkgDir,
		"-var", "output_dir="+golden, "-var", "sysprep_dir="+generalized, "-var", "winrm_password=Trim-e2e-Pw1",
		filepath.Join("testdata", "sysprep-trim.pkr.hcl"))
	t.Logf("build + updates + sysprep took %s", time.Since(start).Round(time.Second))
	noQEMULeft(t, golden)
	noQEMULeft(t, generalized)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "winbake-updates") || strings.Contains(l, "Delivered") || strings.Contains(l, "Retrim") || strings.Contains(l, "Hyper-V") {
			t.Log(l)
		}
	}
	if !strings.Contains(log, "Trimming the free space of C:") || !strings.Contains(log, "VERBOSE: Retrim:  100% complete.") {
		t.Errorf("no retrim in the log:\n%s", log)
	}

	var gm, sm image.Manifest
	readJSON(t, filepath.Join(golden, "standin.json"), &gm)
	readJSON(t, filepath.Join(generalized, "standin.json"), &sm)
	if len(gm.Updates) != 1 || gm.Updates[0].Result != "installed" {
		t.Errorf("golden manifest updates %+v: the update was not installed", gm.Updates)
	}
	for name, m := range map[string]image.Manifest{"golden": gm, "generalized": sm} {
		if m.DiskInterface != "virtio-blk" || m.Accelerator != "tcg" || m.HyperVEnlightenments == nil || len(m.HyperVEnlightenments) != 0 {
			t.Errorf("%s manifest: disk %q, accelerator %q, hyperv_enlightenments %q; want virtio-blk, tcg and none", name, m.DiskInterface, m.Accelerator, m.HyperVEnlightenments)
		}
	}

	// The guest saw the granularity winbake set and discarded its free space.
	serial, err := os.ReadFile(filepath.Join(generalized, "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(serial), "of free space discarded on the virtio-blk disk (granularity 8192)") {
		t.Errorf("the sysprep VM's console shows no retrim at 8192:\n%s", serial)
	}

	before, clusterSize := qcow2Allocation(t, filepath.Join(golden, gm.Disk))
	after, _ := qcow2Allocation(t, filepath.Join(generalized, sm.Disk))
	t.Logf("allocated clusters of %d bytes: golden %d (%.1f MiB), generalized %d (%.1f MiB)",
		clusterSize, before, float64(before*clusterSize)/(1<<20), after, float64(after*clusterSize)/(1<<20))
	if freed := before - after; freed*clusterSize < padding {
		t.Errorf("the generalized disk holds %d clusters fewer than the golden one (%d bytes); the removed update alone held %d bytes", freed, freed*clusterSize, padding)
	}
}
