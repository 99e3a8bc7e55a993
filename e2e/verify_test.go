//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type verifyReport struct {
	Image    string
	Instance string `json:"instance_uuid"`
	Passed   bool
	Checks   []struct{ Name, Result, Evidence string }
}

func (r verifyReport) result(name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Result
		}
	}
	return "missing"
}

func (r verifyReport) evidence(name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Evidence
		}
	}
	return ""
}

// One golden stand-in with real Packer under TCG (UEFI with a TPM), two
// post-processor chains: sysprep without cloudbase-init -> verify, which
// fails the cloudbase-init check (nothing reads the config drive or the
// metadata service); sysprep with the cloudbase-init MSI -> verify in
// OpenStack mode with the config drive and the metadata service at
// 169.254.169.254, where every check passes: cloudbase-init reads the
// metadata over QEMU's user network, sets the host name (rebooting once),
// creates the account WinRM logs on with, installs the SSH key, runs the
// user data and posts the password encrypted. Both generalized images are
// unchanged and no instance file is left.
func TestVerifyWithAndWithoutCloudbaseInit(t *testing.T) {
	iso := standinISO(t)
	dir := t.TempDir()
	golden, plain, cloudbase := filepath.Join(dir, "golden"), filepath.Join(dir, "plain"), filepath.Join(dir, "cloudbase")
	// The stand-in's msiexec installs any non-empty CloudbaseInitSetup*.msi
	// as cloudbase-init's MSI does.
	msi := filepath.Join(dir, "CloudbaseInitSetup_x64.msi")
	if err := os.WriteFile(msi, []byte("stand-in cloudbase-init MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	const password = "Verify-e2e-Pw1"
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+golden, "-var", "plain_dir="+plain,
		"-var", "cloudbase_dir="+cloudbase, "-var", "cloudbase_init_msi="+msi,
		"-var", "winrm_password="+password, filepath.Join("testdata", "verify-standin-both.pkr.hcl"))
	noQEMULeft(t, plain)
	noQEMULeft(t, cloudbase)
	noVerifyVMLeft(t, log, 2)
	if err == nil {
		t.Fatalf("packer build passed although one image has no cloudbase-init:\n%s", log)
	}
	if strings.Contains(log, password) {
		t.Error("the build password appears in the build log")
	}
	for _, want := range []string{"Config drive (config-2)", "throwaway overlay", "Metadata service (openstack) for the guest at http://169.254.169.254/",
		"winbake-verify report for", "cloudbase-init ran its plugins", "check(s) failed", "All checks passed."} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	var r verifyReport
	b := readJSON(t, filepath.Join(plain, "standin.verify.json"), &r)
	if r.Passed || r.result("cloudbase-init ran its plugins") != "fail" || r.result("first boot completes") != "pass" {
		t.Errorf("report without cloudbase-init %s", b)
	}

	var rc verifyReport
	bc := readJSON(t, filepath.Join(cloudbase, "standin.verify.json"), &rc)
	if !rc.Passed {
		serial, _ := os.ReadFile(filepath.Join(cloudbase, "standin.verify-serial.log"))
		t.Errorf("report with cloudbase-init %s\nconsole:\n%s", bc, serial)
	}
	for _, name := range []string{"first boot completes", "cloudbase-init ran its plugins", "WinRM answers (keep_winrm = true)", "admin password posted encrypted",
		"hostname set from metadata", "user created", "SSH public key installed", "user data ran", "updates installed", "no build password left"} {
		if got := rc.result(name); got != "pass" {
			t.Errorf("%s: %s", name, got)
		}
	}
	// UEFI without Secure Boot, variables without enrolled keys: a note,
	// not a failure.
	if got, ev := rc.result("Secure Boot 2023 CAs in the UEFI variables"), rc.evidence("Secure Boot 2023 CAs in the UEFI variables"); got != "info" || !strings.Contains(ev, "PK: (none)") {
		t.Errorf("Secure Boot certificates line: %s %q", got, ev)
	}
	if !strings.Contains(string(bc), "metadata service HttpService") {
		t.Errorf("the cloudbase-init evidence does not name the metadata service: %s", bc)
	}
	for _, d := range []string{plain, cloudbase} {
		var m struct{ Disk, SHA256 string }
		readJSON(t, filepath.Join(d, "standin.json"), &m)
		if got := fileSHA256(t, filepath.Join(d, m.Disk)); got != m.SHA256 {
			t.Errorf("%s: disk checksum %s, manifest says %s: verification changed the image", d, got, m.SHA256)
		}
		if table, err := os.ReadFile(filepath.Join(d, "standin.verify.txt")); err != nil {
			t.Error(err)
		} else {
			t.Logf("%s:\n%s", filepath.Base(d), table)
		}
		rb, _ := os.ReadFile(filepath.Join(d, "standin.verify.json"))
		if strings.Contains(string(rb), password) {
			t.Errorf("the build password is in %s's report", d)
		}
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	if len(after) > len(before) {
		t.Errorf("instance directories left behind: %v", after)
	}
}

// verifyInstanceDir finds winbake-verify's instance directories in the
// build log ("serial console in <dir>/serial.log").
var verifyInstanceDir = regexp.MustCompile(`\(winbake-verify\): Starting QEMU .*; serial console in (\S+)/serial\.log`)

// The broken images winbake-verify must catch, besides the one without
// cloudbase-init (above), end to end: one golden stand-in (BIOS, real Packer under TCG) left with
// the build's answer file in C:\Windows\System32\Sysprep (Packer's file
// provisioner over WinRM; it holds the build password) and with an update
// that kept failing and was deferred (winbake-updates, defer_failed). With
// cloudbase-init reading the config drive first and the metadata service
// after it, exactly "no build password left" and "updates installed" fail,
// naming the answer file and the KB; everything cloudbase-init does passes,
// from the metadata of the config drive: winbake-verify masters it with path
// tables, and the stand-in reads CDs as Windows' CD-ROM file system does
// (directories through the path table only). With
// cloudbase-init reading the metadata API only and the instance given a
// config drive only, "cloudbase-init ran its plugins" fails: no metadata
// service found. The generalized images are unchanged and the password is
// in neither the log nor the reports.
func TestVerifyCatchesBrokenImages(t *testing.T) {
	iso := standinISO(t)
	dir := t.TempDir()
	good, failing := goodAndFailingPackages()
	pkgDir := writePackages(t, filepath.Join(dir, "packages"), good, failing)
	msi := filepath.Join(dir, "CloudbaseInitSetup_x64.msi")
	if err := os.WriteFile(msi, []byte("stand-in cloudbase-init MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	golden, metadata, noConfigDrive := filepath.Join(dir, "golden"), filepath.Join(dir, "metadata"), filepath.Join(dir, "no-config-drive")
	const password = "Broken-e2e-Pw7"
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	start := time.Now()
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+golden, "-var", "packages_dir="+pkgDir,
		"-var", "metadata_dir="+metadata, "-var", "no_config_drive_dir="+noConfigDrive, "-var", "cloudbase_init_msi="+msi,
		"-var", "winrm_password="+password, filepath.Join("testdata", "verify-standin-broken.pkr.hcl"))
	t.Logf("build, 2 x sysprep and verify took %s", time.Since(start).Round(time.Second))
	noQEMULeft(t, golden)
	noQEMULeft(t, metadata)
	noQEMULeft(t, noConfigDrive)
	noVerifyVMLeft(t, log, 2)
	if err == nil {
		t.Fatalf("packer build passed although both images are broken:\n%s", log)
	}
	if strings.Contains(log, password) {
		t.Error("the build password appears in the build log")
	}
	for _, want := range []string{"defer_failed: 1 package(s) stay in the image", "Config drive (config-2)",
		"Metadata service (openstack) for the guest at http://169.254.169.254/", "winbake-verify report for", "check(s) failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "All checks passed.") {
		t.Errorf("a verification passed:\n%s", log)
	}

	// Config drive, then metadata service: only the two defects fail.
	var rm verifyReport
	bm := readJSON(t, filepath.Join(metadata, "standin.verify.json"), &rm)
	wantFail := map[string]bool{"no build password left": true, "updates installed": true}
	for _, name := range []string{"first boot completes", "cloudbase-init ran its plugins", "WinRM answers (keep_winrm = true)",
		"hostname set from metadata", "user created", "SSH public key installed", "user data ran", "updates installed", "no build password left"} {
		want := "pass"
		if wantFail[name] {
			want = "fail"
		}
		if got := rm.result(name); got != want {
			t.Errorf("with the metadata service: %s: %s, want %s", name, got, want)
		}
	}
	for _, c := range rm.Checks {
		if c.Result == "fail" && !wantFail[c.Name] {
			t.Errorf("with the metadata service: %s failed: %s", c.Name, c.Evidence)
		}
	}
	if rm.Passed {
		t.Error("with the metadata service: the report says passed")
	}
	if ev := rm.evidence("no build password left"); !strings.Contains(ev, `C:\Windows\System32\Sysprep\unattend.xml remains and holds a build password`) {
		t.Errorf("answer-file evidence %q", ev)
	}
	if ev := rm.evidence("cloudbase-init ran its plugins"); !strings.Contains(ev, "metadata service ConfigDriveService") {
		t.Errorf("cloudbase-init did not read the config drive: %q", ev)
	}
	if ev := rm.evidence("updates installed"); !strings.Contains(ev, "KB5000012 (deferred in the manifest, not in dism /Get-Packages)") || strings.Contains(ev, "KB5000010") {
		t.Errorf("updates evidence %q", ev)
	}
	if t.Failed() {
		serial, _ := os.ReadFile(filepath.Join(metadata, "standin.verify-serial.log"))
		t.Logf("report with the metadata service %s\nconsole:\n%s", bm, serial)
	}

	// Config drive only, for an image that reads the metadata API only.
	var rc verifyReport
	bc := readJSON(t, filepath.Join(noConfigDrive, "standin.verify.json"), &rc)
	if ev := rc.evidence("cloudbase-init ran its plugins"); rc.Passed || rc.result("cloudbase-init ran its plugins") != "fail" || !strings.Contains(ev, "No metadata service found") {
		serial, _ := os.ReadFile(filepath.Join(noConfigDrive, "standin.verify-serial.log"))
		t.Errorf("report without config drive support %s\nconsole:\n%s", bc, serial)
	}
	if got := rc.result("WinRM answers (keep_winrm = true)"); got != "fail" {
		t.Errorf("without config drive support: WinRM answers: %s, but cloudbase-init created no account", got)
	}

	for _, d := range []string{metadata, noConfigDrive} {
		var m struct{ Disk, SHA256 string }
		readJSON(t, filepath.Join(d, "standin.json"), &m)
		if got := fileSHA256(t, filepath.Join(d, m.Disk)); got != m.SHA256 {
			t.Errorf("%s: disk checksum %s, manifest says %s: verification changed the image", d, got, m.SHA256)
		}
		for _, report := range []string{"standin.verify.json", "standin.verify.txt"} {
			b, err := os.ReadFile(filepath.Join(d, report))
			if err != nil {
				t.Error(err)
				continue
			}
			if strings.Contains(string(b), password) {
				t.Errorf("the build password is in %s", filepath.Join(filepath.Base(d), report))
			}
			if report == "standin.verify.txt" {
				t.Logf("%s:\n%s", filepath.Base(d), b)
			}
		}
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "winbake-verify-*"))
	if len(after) > len(before) {
		t.Errorf("instance directories left behind: %v", after)
	}
}

// noVerifyVMLeft checks that no verification VM outlived the build: they
// run in instance directories of their own, which the log names (want of
// them).
func noVerifyVMLeft(t *testing.T, log string, want int) {
	t.Helper()
	instances := verifyInstanceDir.FindAllStringSubmatch(log, -1)
	for _, m := range instances {
		if b, err := exec.Command("pgrep", "-f", "qemu-system-x86_64 .*"+regexp.QuoteMeta(m[1])).Output(); err == nil && len(b) > 0 {
			t.Errorf("the verification VM of %s still runs: pids %s", m[1], b)
		}
	}
	if len(instances) != want {
		t.Errorf("the log names %d verification VMs, want %d:\n%s", len(instances), want, log)
	}
}
