package installmedia

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
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

// run runs a tool and returns its standard output, failing the test with
// its output when it fails.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	return mediatest.Run(t, testTools[name], name, args...)
}

// testImage is an image to capture with wimlib.
type testImage = mediatest.Image

var (
	// Datacenter in two languages, so the tests read a language list.
	server2022Images = withLanguages(mediatest.Server2022, 3, "en-US", "de-DE")
	server2025Images = mediatest.Server2025
	// arm64 images, so the tests also read architecture code 12.
	windows11Images = onArch(mediatest.Windows11, 12)
)

func withLanguages(images []testImage, i int, languages ...string) []testImage {
	out := append([]testImage(nil), images...)
	out[i].Languages = languages
	return out
}

func onArch(images []testImage, arch int) []testImage {
	out := append([]testImage(nil), images...)
	for i := range out {
		out[i].Arch = arch
	}
	return out
}

// buildWIM captures images into a new WIM file and returns its path.
func buildWIM(t testing.TB, images []testImage, extra ...string) string {
	t.Helper()
	return mediatest.WIM(t, images, extra...)
}

// buildESD exports all images of a WIM into a solid, LZMS-compressed file,
// as install.esd files are.
func buildESD(t testing.TB, wim string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "install.esd")
	run(t, "wimlib-imagex", "export", wim, "all", out, "--solid")
	return out
}

// buildISO builds an ISO 9660 image with xorriso; args are extra mkisofs
// options.
func buildISO(t testing.TB, files map[string]string, args ...string) string {
	t.Helper()
	return mediatest.ISO(t, "WINBAKE_TEST", files, args...)
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
		names = append(names, img.Name)
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
