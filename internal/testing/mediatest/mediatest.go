// Package mediatest builds small but real Windows install media for tests:
// WIM files captured with wimlib (Debian's wimtools) carrying the metadata
// real Windows images carry, inside ISOs mastered with xorriso.
//
// Tests fail, rather than skip, when a tool is missing, naming the Debian
// package to install.
package mediatest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Image is a Windows image to capture, described as install.wim records it.
type Image struct {
	Name             string // e.g. "Windows Server 2022 SERVERSTANDARDCORE"
	EditionID        string // e.g. "ServerStandardCore"
	InstallationType string // "Server", "Server Core" or "Client"
	Arch             int    // WIM architecture code: 0 x86, 9 amd64, 12 arm64
	Build, SPBuild   int
	Languages        []string
}

func windows(name, edition, installType string, arch, build, spBuild int) Image {
	return Image{Name: name, EditionID: edition, InstallationType: installType, Arch: arch, Build: build, SPBuild: spBuild, Languages: []string{"en-US"}}
}

// The image lists of real evaluation and retail media, in index order.
var (
	Server2022 = []Image{
		windows("Windows Server 2022 SERVERSTANDARDCORE", "ServerStandardCore", "Server Core", 9, 20348, 587),
		windows("Windows Server 2022 SERVERSTANDARD", "ServerStandard", "Server", 9, 20348, 587),
		windows("Windows Server 2022 SERVERDATACENTERCORE", "ServerDatacenterCore", "Server Core", 9, 20348, 587),
		windows("Windows Server 2022 SERVERDATACENTER", "ServerDatacenter", "Server", 9, 20348, 587),
	}
	Server2025 = []Image{
		windows("Windows Server 2025 SERVERSTANDARDCORE", "ServerStandardCore", "Server Core", 9, 26100, 1742),
		windows("Windows Server 2025 SERVERDATACENTER", "ServerDatacenter", "Server", 9, 26100, 1742),
	}
	Windows11 = []Image{
		windows("Windows 11 Home", "Core", "Client", 9, 22631, 2428),
		windows("Windows 11 Pro", "Professional", "Client", 9, 22631, 2428),
	}
)

// properties returns wimlib --image-property arguments for img.
func (img Image) properties() []string {
	productType := "ServerNT"
	if img.InstallationType == "Client" {
		productType = "WinNT"
	}
	props := []string{
		"DISPLAYNAME=" + img.Name,
		"FLAGS=" + img.EditionID,
		fmt.Sprintf("WINDOWS/ARCH=%d", img.Arch),
		"WINDOWS/PRODUCTNAME=Microsoft® Windows® Operating System",
		"WINDOWS/EDITIONID=" + img.EditionID,
		"WINDOWS/INSTALLATIONTYPE=" + img.InstallationType,
		"WINDOWS/PRODUCTTYPE=" + productType,
		"WINDOWS/VERSION/MAJOR=10",
		"WINDOWS/VERSION/MINOR=0",
		fmt.Sprintf("WINDOWS/VERSION/BUILD=%d", img.Build),
		fmt.Sprintf("WINDOWS/VERSION/SPBUILD=%d", img.SPBuild),
	}
	for i, lang := range img.Languages {
		if i == 0 {
			props = append(props, "WINDOWS/LANGUAGES/LANGUAGE="+lang, "WINDOWS/LANGUAGES/DEFAULT="+lang)
		} else {
			props = append(props, fmt.Sprintf("WINDOWS/LANGUAGES/LANGUAGE[%d]=%s", i+1, lang))
		}
	}
	return props
}

// Run runs a tool, failing the test with its output when it fails or is not
// installed (debianPackage names the package that provides it).
func Run(t testing.TB, debianPackage, tool string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed: apt-get install -y --no-install-recommends %s (make deps does this)", tool, debianPackage)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", tool, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// WIM captures images (each of a tiny directory tree) into a new WIM file and
// returns its path. extra arguments go to every wimcapture/wimappend call,
// e.g. "--compress=LZX".
func WIM(t testing.TB, images []Image, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "Windows", "System32"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "Windows", "System32", "ntoskrnl.exe"), []byte("not really a kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "install.wim")
	for i, img := range images {
		tool := "wimappend"
		if i == 0 {
			tool = "wimcapture"
		}
		args := []string{tree, out, img.Name, img.Name}
		for _, p := range img.properties() {
			args = append(args, "--image-property", p)
		}
		Run(t, "wimtools", tool, append(args, extra...)...)
	}
	return out
}

// ISO masters an ISO 9660 image (Rock Ridge and Joliet names) with xorriso.
// files maps paths on the ISO to local files.
func ISO(t testing.TB, label string, files map[string]string, mkisofsArgs ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "media.iso")
	args := []string{"-as", "mkisofs", "-quiet", "-V", label, "-o", out}
	args = append(args, mkisofsArgs...)
	args = append(args, "-graft-points")
	for isoPath, local := range files {
		args = append(args, isoPath+"="+local)
	}
	Run(t, "xorriso", "xorriso", args...)
	return out
}

// InstallISO returns an install ISO holding sources/install.wim with images.
func InstallISO(t testing.TB, images []Image) string {
	t.Helper()
	return ISO(t, "WINBAKE_TEST", map[string]string{"sources/install.wim": WIM(t, images)}, "-J", "-R")
}

// ExtractISOFile returns the content of the file at isoPath on the ISO,
// read by xorriso (independently of winbake's own reader).
func ExtractISOFile(t testing.TB, iso, isoPath string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(isoPath))
	Run(t, "xorriso", "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+strings.TrimPrefix(isoPath, "/"), out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
