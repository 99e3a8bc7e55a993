//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// goldenVariant is a golden stand-in image the tests that only start from
// one share (sysprep, verify, updates): built once through the real
// winbake-qemu (testdata/golden.pkr.hcl) and kept in
// $HOME/.cache/winbake/golden/<name>-<key>, where the key hashes every input
// (the stand-in ISO, the plugin binary, Packer's version, the template and
// the variables): a change to any of them builds it anew, so a stale
// golden image can never hide a change. Tests that exist to test the
// install itself (TestQemuBuildsStandin, the libvirt builds) keep
// installing.
type goldenVariant struct {
	name string
	vars map[string]string
}

var (
	// goldenUEFI: UEFI with Secure Boot and a TPM, as Windows 11 and Server
	// 2025 want.
	goldenUEFI = goldenVariant{"uefi-sb-tpm", map[string]string{"firmware": "uefi", "secure_boot": "true", "tpm": "true"}}
	// goldenBIOS: BIOS without a TPM.
	goldenBIOS = goldenVariant{"bios", map[string]string{"firmware": "bios", "secure_boot": "false", "tpm": "false"}}
)

// goldenPassword is the build account's password of every golden image.
const goldenPassword = "Golden-e2e-Pw1"

var goldenBuilds sync.Map // variant name → *goldenBuild

type goldenBuild struct {
	once sync.Once
	dir  string
	err  error
}

// golden returns a directory of the test's own holding a copy of the
// variant's golden image: standin.qcow2, its manifest standin.json, and
// efivars.fd and tpm/ for UEFI. The copy is the test's to change.
func golden(t *testing.T, v goldenVariant) string {
	t.Helper()
	iso := standinISO(t) // holds the test's VM slot, which the build uses
	b, _ := goldenBuilds.LoadOrStore(v.name, &goldenBuild{})
	gb := b.(*goldenBuild)
	gb.once.Do(func() { gb.dir, gb.err = buildGolden(t, v, iso) })
	if gb.err != nil {
		t.Fatalf("golden image %s: %v", v.name, gb.err)
	}
	dst := filepath.Join(t.TempDir(), "golden")
	if out, err := exec.Command("cp", "-a", gb.dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the golden image %s: %v\n%s", gb.dir, err, out)
	}
	return dst
}

// buildGolden returns the cached golden image of v, building it when no
// complete one with the same inputs is cached.
func buildGolden(t *testing.T, v goldenVariant, iso string) (string, error) {
	template, err := filepath.Abs(filepath.Join("testdata", "golden.pkr.hcl"))
	if err != nil {
		return "", err
	}
	isoSum, err := sha256File(iso)
	if err != nil {
		return "", err
	}
	vars := map[string]string{"iso": iso, "iso_checksum": "sha256:" + isoSum, "winrm_password": goldenPassword}
	for k, val := range v.vars {
		vars[k] = val
	}
	key, err := goldenKey(template, vars)
	if err != nil {
		return "", err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(home, ".cache", "winbake", "golden")
	dir := filepath.Join(root, v.name+"-"+key[:16])
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	// One builder per variant across processes; the others wait for it.
	lock, err := os.OpenFile(filepath.Join(root, v.name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "standin.json")); err == nil {
		t.Logf("golden image %s: cached in %s", v.name, dir)
		return dir, nil
	}
	partial := dir + ".partial"
	_ = os.RemoveAll(partial)
	args := []string{"build"}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-var", k+"="+vars[k])
	}
	args = append(args, "-var", "output_dir="+partial, template)
	start := time.Now()
	log, err := installed.run("", args...)
	noQEMULeft(t, partial)
	if err != nil {
		_ = os.RemoveAll(partial)
		return "", fmt.Errorf("packer build: %v\n%s", err, log)
	}
	if err := os.Rename(partial, dir); err != nil {
		return "", err
	}
	t.Logf("golden image %s: built in %s into %s", v.name, time.Since(start).Round(time.Second), dir)
	// Older golden images of this variant can no longer be used.
	stale, _ := filepath.Glob(filepath.Join(root, v.name+"-*"))
	for _, s := range stale {
		if s != dir {
			_ = os.RemoveAll(s)
		}
	}
	return dir, nil
}

// goldenKey hashes the inputs of a golden image: the files the variables
// and the test environment name (the ISO, the plugin binary), Packer's
// version, the template and the variables.
func goldenKey(template string, vars map[string]string) (string, error) {
	h := sha256.New()
	for _, f := range []string{template, os.Getenv("WINBAKE_PLUGIN_BINARY"), vars["iso"]} {
		sum, err := sha256File(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", sum)
	}
	version, err := exec.Command(installed.packer, "version").Output()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\n", strings.TrimSpace(string(version)))
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "iso" {
			continue // its content is hashed above, not its path
		}
		fmt.Fprintf(h, "%s=%s\n", k, vars[k])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
