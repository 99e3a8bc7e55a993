package setup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"

	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// writeTree writes files (slash-separated path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openTestCD opens an ISO image as the CD in drive letter.
func openTestCD(t *testing.T, name, letter, iso string) Medium {
	t.Helper()
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenCD(BlockDevice{Name: name, Kind: "cd"}, letter, f, f)
	if err != nil {
		f.Close()
		t.Fatalf("%s: %v", iso, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testCD masters files as the tests' and winbake's CDs are mastered
// (xorriso, Joliet and Rock Ridge) and opens the image as drive letter.
func testCD(t *testing.T, name, letter string, files map[string]string) Medium {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "tree"), files)
	iso := filepath.Join(dir, name+".iso")
	mediatest.Run(t, "xorriso", "xorriso", "-as", "mkisofs", "-quiet", "-J", "-R", "-V", strings.ToUpper(name), "-o", iso, filepath.Join(dir, "tree"))
	return openTestCD(t, name, letter, iso)
}

// pathTablelessCD writes files with github.com/kdomanski/iso9660, whose
// path table is empty, and opens the image as drive letter.
func pathTablelessCD(t *testing.T, name, letter, label string, files map[string]string) Medium {
	t.Helper()
	w, err := iso9660.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Cleanup() }()
	for p, content := range files {
		if err := w.AddFile(strings.NewReader(content), p); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(t.TempDir(), name+".iso")
	f, err := os.Create(iso)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTo(f, label); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return openTestCD(t, name, letter, iso)
}

func TestMedia(t *testing.T) {
	media := []Medium{
		testCD(t, "sr0", "D", map[string]string{"sources/install.wim": "x"}),
		testCD(t, "sr1", "E", map[string]string{"AutoUnattend.XML": "<answer/>"}),
		testCD(t, "sr2", "F", map[string]string{"VIOSTOR/2k22/AMD64/viostor.inf": "x", "NetKVM/2k22/amd64/readme.txt": "x"}),
	}
	raw, src, problems, ok := FindAnswerFile(media)
	if !ok || src != `E:\AutoUnattend.XML` || string(raw) != "<answer/>" || len(problems) != 0 {
		t.Errorf("answer file on CDs: %q %q %v %v", src, raw, problems, ok)
	}
	fd := t.TempDir()
	writeTree(t, fd, map[string]string{"autounattend.xml": "<floppy/>"})
	withFloppy := append(media, Medium{Device: BlockDevice{Name: "fd0", Kind: "floppy"}, Letter: "A", Dir: fd})
	if raw, src, _, ok := FindAnswerFile(withFloppy); !ok || src != `A:\autounattend.xml` || string(raw) != "<floppy/>" {
		t.Errorf("answer file with a floppy: %q %q %v", src, raw, ok)
	}
	df, _, ok := ResolveDriverPath(media, `E:\viostor\2k22\amd64`)
	if !ok || df.Medium.Letter != "F" || df.Dir != `F:\VIOSTOR\2k22\AMD64` || !slices.Equal(df.INFs, []string{"viostor"}) {
		t.Errorf("viostor: %+v %v", df, ok)
	}
	if df, _, ok := ResolveDriverPath(media, `F:\NetKVM\2k22\amd64`); !ok || len(df.INFs) != 0 {
		t.Errorf("NetKVM without .inf: %+v %v", df, ok)
	}
	for _, p := range []string{`F:\vioscsi\2k22\amd64`, `\\server\share\viostor`, `viostor`, `F:\NetKVM\2k22\amd64\readme.txt`} {
		if _, misses, ok := ResolveDriverPath(media, p); ok || len(misses) == 0 {
			t.Errorf("%s resolved (%v)", p, misses)
		}
	}
	if _, misses, _ := ResolveDriverPath(media, `F:\vioscsi\2k22\amd64`); !strings.Contains(misses[0], `F:\vioscsi\2k22\amd64: not found (STATUS_OBJECT_PATH_NOT_FOUND)`) {
		t.Errorf("miss on F: %v", misses)
	}
}

// A CD without a path table, as kdomanski/iso9660 writes it: Windows,
// and the stand-in, find the files of its root and nothing in its
// folders, and the stand-in says why.
func TestPathTablelessCDShowsOnlyItsRoot(t *testing.T) {
	cd := pathTablelessCD(t, "sr1", "E", "WINBAKE", map[string]string{
		"autounattend.xml":               "<answer/>",
		"viostor/2k22/amd64/viostor.inf": "x",
		"guest-agent/qemu-ga-x86_64.msi": "msi",
	})
	if raw, src, _, ok := FindAnswerFile([]Medium{cd}); !ok || src != `E:\autounattend.xml` || string(raw) != "<answer/>" {
		t.Errorf("answer file in the root: %q %q %v", src, raw, ok)
	}
	_, misses, ok := ResolveDriverPath([]Medium{cd}, `E:\viostor\2k22\amd64`)
	if ok || len(misses) != 1 || !strings.Contains(misses[0], `E:\viostor\2k22\amd64: not found (STATUS_OBJECT_PATH_NOT_FOUND)`) ||
		!strings.Contains(misses[0], "path table is empty (0 bytes)") {
		t.Errorf("driver folder: %v %v", misses, ok)
	}
	if _, err := cd.Stat(`guest-agent\qemu-ga-x86_64.msi`); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("MSI: %v", err)
	}
	st := &State{}
	out := InterpretWithMedia(st, []Medium{cd}, `msiexec /i E:\guest-agent\qemu-ga-x86_64.msi /qn`)
	if !strings.Contains(out.Summary, "1619") || !strings.Contains(out.Summary, "not found") || st.QemuGuestAgent {
		t.Errorf("msiexec: %+v", out)
	}
}

// The CD copy cloudbase-init reads holds what CDFS finds: the whole
// config drive Nova's way, only the root of a drive without a path table
// (the folder it cannot enter logged as not found), the Joliet label.
func TestCopyCDView(t *testing.T) {
	files := map[string]string{"openstack/latest/meta_data.json": `{"uuid":"u"}`, "openstack/latest/user_data": "#ps1", "readme.txt": "r"}
	var log []string
	logf := func(format string, args ...any) { log = append(log, strings.TrimSpace(fmt.Sprintf(format, args...))) }

	good := testCD(t, "sr0", "D", files)
	dir := filepath.Join(t.TempDir(), "good")
	if err := CopyCDView(good, dir, logf); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if good.CD.Label() != "SR0" || len(log) != 0 {
		t.Errorf("label %q, log %v", good.CD.Label(), log)
	}

	bad := pathTablelessCD(t, "sr1", "E", "config-2", files)
	dir = filepath.Join(t.TempDir(), "bad")
	if err := CopyCDView(bad, dir, logf); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "readme.txt" {
		t.Errorf("copy of the drive without a path table: %v", ents)
	}
	if len(log) != 1 || !strings.Contains(log[0], `E:\openstack: not found`) || !strings.Contains(log[0], "path table is empty") {
		t.Errorf("log: %v", log)
	}
	if bad.CD.Label() != "config-2" {
		t.Errorf("label %q", bad.CD.Label())
	}
}
