package installmedia

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Debian packages providing the tools the tests run. The tests fail (they
// do not skip) when a tool is missing, so that CI notices.
var testTools = map[string]string{
	"wimcapture":    "wimtools",
	"wimappend":     "wimtools",
	"wimlib-imagex": "wimtools",
	"wiminfo":       "wimtools",
	"xorriso":       "xorriso",
	"genisoimage":   "genisoimage",
	"7zz":           "7zip",
	"udfinfo":       "udftools",
}

// requireTool returns the path of a tool, failing the test when it is not
// installed.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		pkg := testTools[name]
		t.Fatalf("%s is not installed; the installmedia tests need it: apt-get install -y --no-install-recommends %s", name, pkg)
	}
	return p
}

// run runs a tool and returns its standard output, failing the test with
// its output when it fails.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(requireTool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// testImage is an image to capture with wimlib.
type testImage struct {
	name, description string
	props             []string // NAME=VALUE image properties
}

func windowsImage(name, edition, installType, productType string, arch, build, spBuild int, langs ...string) testImage {
	props := []string{
		"DISPLAYNAME=" + name,
		"FLAGS=" + edition,
		fmt.Sprintf("WINDOWS/ARCH=%d", arch),
		"WINDOWS/PRODUCTNAME=Microsoft® Windows® Operating System",
		"WINDOWS/EDITIONID=" + edition,
		"WINDOWS/INSTALLATIONTYPE=" + installType,
		"WINDOWS/PRODUCTTYPE=" + productType,
		"WINDOWS/VERSION/MAJOR=10",
		"WINDOWS/VERSION/MINOR=0",
		fmt.Sprintf("WINDOWS/VERSION/BUILD=%d", build),
		fmt.Sprintf("WINDOWS/VERSION/SPBUILD=%d", spBuild),
	}
	for i, l := range langs {
		if i == 0 {
			props = append(props, "WINDOWS/LANGUAGES/LANGUAGE="+l, "WINDOWS/LANGUAGES/DEFAULT="+l)
		} else {
			props = append(props, fmt.Sprintf("WINDOWS/LANGUAGES/LANGUAGE[%d]=%s", i+1, l))
		}
	}
	return testImage{name: name, description: name, props: props}
}

var (
	server2022Images = []testImage{
		windowsImage("Windows Server 2022 SERVERSTANDARDCORE", "ServerStandardCore", "Server Core", "ServerNT", 9, 20348, 587, "en-US"),
		windowsImage("Windows Server 2022 SERVERSTANDARD", "ServerStandard", "Server", "ServerNT", 9, 20348, 587, "en-US"),
		windowsImage("Windows Server 2022 SERVERDATACENTERCORE", "ServerDatacenterCore", "Server Core", "ServerNT", 9, 20348, 587, "en-US"),
		windowsImage("Windows Server 2022 SERVERDATACENTER", "ServerDatacenter", "Server", "ServerNT", 9, 20348, 587, "en-US", "de-DE"),
	}
	server2025Images = []testImage{
		windowsImage("Windows Server 2025 SERVERSTANDARDCORE", "ServerStandardCore", "Server Core", "ServerNT", 9, 26100, 1742, "en-US"),
		windowsImage("Windows Server 2025 SERVERDATACENTER", "ServerDatacenter", "Server", "ServerNT", 9, 26100, 1742, "en-US"),
	}
	windows11Images = []testImage{
		windowsImage("Windows 11 Home", "Core", "Client", "WinNT", 12, 22631, 2428, "en-US"),
		windowsImage("Windows 11 Pro", "Professional", "Client", "WinNT", 12, 22631, 2428, "en-US"),
	}
)

// buildWIM captures images (of a tiny directory tree) into a new WIM file
// and returns its path. extra arguments go to every wimcapture/wimappend.
func buildWIM(t testing.TB, images []testImage, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(src, "Windows", "System32"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "Windows", "System32", "ntoskrnl.exe"), []byte("not really a kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "install.wim")
	for i, img := range images {
		tool := "wimappend"
		if i == 0 {
			tool = "wimcapture"
		}
		args := []string{src, out, img.name, img.description}
		for _, p := range img.props {
			args = append(args, "--image-property", p)
		}
		args = append(args, extra...)
		run(t, tool, args...)
	}
	return out
}

// buildESD exports all images of a WIM into a solid, LZMS-compressed file,
// as install.esd files are.
func buildESD(t testing.TB, wim string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "install.esd")
	run(t, "wimlib-imagex", "export", wim, "all", out, "--solid")
	return out
}

// buildISO builds an ISO 9660 image with Rock Ridge and Joliet names with
// xorriso. files maps paths on the ISO to local files; args are extra
// mkisofs options.
func buildISO(t testing.TB, files map[string]string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "media.iso")
	cmd := []string{"-as", "mkisofs", "-quiet", "-V", "WINBAKE_TEST", "-o", out}
	cmd = append(cmd, args...)
	cmd = append(cmd, "-graft-points")
	for isoPath, local := range files {
		cmd = append(cmd, isoPath+"="+local)
	}
	run(t, "xorriso", cmd...)
	return out
}

// writeFile writes data to a new file in a temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// imageNames returns the names of images in order.
func imageNames(images []Image) []string {
	var names []string
	for _, img := range images {
		names = append(names, img.Name)
	}
	return names
}

func testImageNames(images []testImage) []string {
	var names []string
	for _, img := range images {
		names = append(names, img.name)
	}
	return names
}

func wantErrContains(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }
