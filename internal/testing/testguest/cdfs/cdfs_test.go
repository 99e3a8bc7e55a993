package cdfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"

	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// tree writes files (slash-separated path → content) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// master writes an ISO of files with a mastering tool ("xorriso" through
// its genisoimage emulation, or "genisoimage") and the given options.
func master(t *testing.T, tool string, files map[string]string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cd.iso")
	src := tree(t, files)
	all := append(append([]string{"-quiet", "-o", out}, args...), src)
	if tool == "xorriso" {
		mediatest.Run(t, "xorriso", "xorriso", append([]string{"-as", "genisoimage"}, all...)...)
	} else {
		mediatest.Run(t, tool, tool, all...)
	}
	return out
}

// novaFlags are the options Nova's ConfigDriveBuilder._make_iso9660 gives
// genisoimage.
var novaFlags = []string{"-ldots", "-allow-lowercase", "-allow-multidot", "-l", "-publisher", "test", "-J", "-r", "-V", "config-2"}

// kdomanskiISO writes files with github.com/kdomanski/iso9660, which
// records a path table of 0 bytes.
func kdomanskiISO(t *testing.T, label string, files map[string]string) string {
	t.Helper()
	w, err := iso9660.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Cleanup() }()
	for name, content := range files {
		if err := w.AddFile(strings.NewReader(content), name); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "kdomanski.iso")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := w.WriteTo(f, label); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t *testing.T, path string) *Volume {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v, err := Open(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func readOK(t *testing.T, v *Volume, path, want string) {
	t.Helper()
	b, err := v.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if string(b) != want {
		t.Errorf("%s: %q, want %q", path, b, want)
	}
}

func notFound(t *testing.T, v *Volume, path, status string) *NotFoundError {
	t.Helper()
	_, err := v.ReadFile(path)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Status != status || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: %v, want %s", path, err, status)
	}
	return nf
}

var configDrive = map[string]string{
	"openstack/latest/meta_data.json": `{"uuid":"1"}`,
	"openstack/latest/user_data":      "#ps1_sysnative\n",
	"root.txt":                        "in the root",
}

// A path table of 0 bytes, as kdomanski/iso9660 writes: the root's files
// are there (the root comes from the volume descriptor), nothing below it
// is, exactly as Windows' CDFS sees the volume; the same files mastered as
// Nova does (genisoimage, here also xorriso's emulation of it) are read.
func TestPathTableLessVolumeShowsOnlyTheRoot(t *testing.T) {
	v := open(t, kdomanskiISO(t, "config-2", configDrive))
	if v.PathTableSize() != 0 || v.Label() != "config-2" {
		t.Fatalf("kdomanski volume: %s", v.Describe())
	}
	readOK(t, v, "root.txt", "in the root")
	nf := notFound(t, v, `openstack\latest\meta_data.json`, "STATUS_OBJECT_PATH_NOT_FOUND")
	if !strings.Contains(nf.Error(), "not found") || !strings.Contains(nf.Reason, "path table is empty (0 bytes)") {
		t.Errorf("message: %v", nf)
	}
	// The directory is in the root's records, but CDFS does not open
	// directories from there.
	_ = notFound(t, v, `openstack`, "STATUS_OBJECT_NAME_NOT_FOUND")
	if ents, err := v.ReadDir(`\`); err != nil || len(ents) != 2 {
		t.Errorf("root listing: %+v %v", ents, err)
	}
	if _, err := v.ReadDir(`openstack`); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("listing openstack: %v", err)
	}

	for _, tool := range []string{"genisoimage", "xorriso"} {
		v := open(t, master(t, tool, configDrive, novaFlags...))
		if v.PathTableSize() == 0 || !v.Joliet() || v.Label() != "config-2" {
			t.Errorf("%s: %s", tool, v.Describe())
		}
		readOK(t, v, `openstack\latest\meta_data.json`, `{"uuid":"1"}`)
		readOK(t, v, `/openstack/latest/user_data`, "#ps1_sysnative\n")
		readOK(t, v, `root.txt`, "in the root")
	}
}

// Directories are found in the path table only: a volume whose path table
// lists nothing but the root hides its directories even though the
// directory records name them.
func TestDirectoriesComeFromThePathTable(t *testing.T) {
	path := master(t, "xorriso", configDrive, "-l", "-V", "cut")
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep only the root's 10-byte entry (8 bytes and a padded 1-byte
	// name) in the primary volume descriptor's path table.
	pvd := img[16*SectorSize:]
	binary.LittleEndian.PutUint32(pvd[132:], 10)
	binary.BigEndian.PutUint32(pvd[136:], 10)
	cut := filepath.Join(t.TempDir(), "cut.iso")
	if err := os.WriteFile(cut, img, 0o644); err != nil {
		t.Fatal(err)
	}
	v := open(t, cut)
	if v.Joliet() {
		t.Fatal("no Joliet was written")
	}
	nf := notFound(t, v, `OPENSTACK\LATEST\META_DATA.JSON`, "STATUS_OBJECT_PATH_NOT_FOUND")
	if !strings.Contains(nf.Reason, "has no entry for it") {
		t.Errorf("reason: %s", nf.Reason)
	}
	readOK(t, v, "ROOT.TXT", "in the root")
	// The same image with its path table intact.
	readOK(t, open(t, path), `OPENSTACK\LATEST\META_DATA.JSON`, `{"uuid":"1"}`)
}

// The Joliet supplementary descriptor is preferred: its names (long,
// mixed case) are the ones found, the primary descriptor's 8.3 names are
// not, and the label is Joliet's.
func TestJolietIsPreferred(t *testing.T) {
	files := map[string]string{"Drivers/VioSerial/2k22/amd64/vioser.inf": "inf", "a-rather-long-file-name.json": "{}"}
	v := open(t, master(t, "xorriso", files, "-J", "-V", "virtio-win"))
	if !v.Joliet() || v.Label() != "virtio-win" {
		t.Fatalf("%s", v.Describe())
	}
	readOK(t, v, `Drivers\VioSerial\2k22\amd64\vioser.inf`, "inf")
	readOK(t, v, `a-rather-long-file-name.json`, "{}")
	// The primary tree's name for it (level 1: 8.3, upper case).
	_ = notFound(t, v, `A_RATHER.JSO`, "STATUS_OBJECT_NAME_NOT_FOUND")
	f, err := v.Stat(`drivers\vioserial\2K22\AMD64\VIOSER.INF`)
	if err != nil || f.Path() != `\Drivers\VioSerial\2k22\amd64\vioser.inf` || f.Name() != "vioser.inf" || f.Size() != 3 {
		t.Errorf("recorded names: %+v %v", f, err)
	}

	// Without Joliet, the primary tree's names.
	v = open(t, master(t, "xorriso", files, "-V", "virtio-win"))
	if v.Joliet() {
		t.Fatal("Joliet without -J")
	}
	readOK(t, v, `A_RATHER.JSO`, "{}")
	_ = notFound(t, v, `a-rather-long-file-name.json`, "STATUS_OBJECT_NAME_NOT_FOUND")
}

// Names match whatever their case, the ";1" version is ignored unless
// asked for, and a trailing dot (a file without extension: "USER_DATA.;1")
// is dropped.
func TestNamesCaseVersionAndTrailingDot(t *testing.T) {
	v := open(t, master(t, "xorriso", configDrive, "-l", "-V", "plain"))
	if v.Joliet() {
		t.Fatal("Joliet without -J")
	}
	readOK(t, v, `openstack\latest\meta_data.json`, `{"uuid":"1"}`)
	readOK(t, v, `OpenStack\Latest\META_DATA.JSON`, `{"uuid":"1"}`)
	readOK(t, v, `openstack\latest\meta_data.json;1`, `{"uuid":"1"}`)
	_ = notFound(t, v, `openstack\latest\meta_data.json;2`, "STATUS_OBJECT_NAME_NOT_FOUND")
	readOK(t, v, `openstack\latest\user_data`, "#ps1_sysnative\n")
	ents, err := v.ReadDir(`openstack\latest`)
	if err != nil || len(ents) != 2 || ents[0].Name != "META_DATA.JSON" || ents[1].Name != "USER_DATA" || ents[1].IsDir || ents[1].Size != 15 {
		t.Errorf("listing: %+v %v", ents, err)
	}
	ents, err = v.ReadDir(`\`)
	if err != nil || len(ents) != 2 || ents[0].Name != "OPENSTACK" || !ents[0].IsDir {
		t.Errorf("root listing: %+v %v", ents, err)
	}
}

// Nested directories resolve level by level through the path table, each
// among the children of the one before; a file found where a directory is
// expected, or a missing level, fails as on Windows.
func TestNestedDirectories(t *testing.T) {
	files := map[string]string{
		"a/b/c/d/e/deep.txt":  "deep",
		"a/b/x/d/e/other.txt": "other",
		"b/c/d/e/root-b.txt":  "b",
		"a/file":              "file",
	}
	v := open(t, master(t, "xorriso", files, "-J", "-r", "-V", "nested"))
	readOK(t, v, `a\b\c\d\e\deep.txt`, "deep")
	readOK(t, v, `a\b\x\d\e\other.txt`, "other")
	readOK(t, v, `b\c\d\e\root-b.txt`, "b")
	_ = notFound(t, v, `a\b\c\d\e\other.txt`, "STATUS_OBJECT_NAME_NOT_FOUND")
	_ = notFound(t, v, `a\c\d\e\deep.txt`, "STATUS_OBJECT_PATH_NOT_FOUND")
	_ = notFound(t, v, `a\file\deep.txt`, "STATUS_OBJECT_PATH_NOT_FOUND")
	d, err := v.Stat(`A\B\C`)
	if err != nil || !d.IsDir() || d.Path() != `\a\b\c` {
		t.Errorf("directory: %+v %v", d, err)
	}
	if _, err := v.ReadFile(`a\b`); err == nil {
		t.Error("a directory read as a file")
	}
}

// Data larger than a sector, read whole and in pieces.
func TestFileData(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1000) // 16000 bytes
	v := open(t, master(t, "xorriso", map[string]string{"sources/install.wim": big, "empty": ""}, "-J", "-V", "data"))
	readOK(t, v, `sources\install.wim`, big)
	readOK(t, v, `empty`, "")
	f, err := v.Stat(`sources\install.wim`)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100)
	if n, err := r.ReadAt(p, 4090); n != 100 || err != nil || string(p) != big[4090:4190] {
		t.Errorf("ReadAt: %d %v %q", n, err, p)
	}
	if n, err := r.ReadAt(p, int64(len(big))-10); n != 10 || err == nil || !bytes.Equal(p[:10], []byte(big[len(big)-10:])) {
		t.Errorf("ReadAt at the end: %d %v", n, err)
	}
}

// Not ISO 9660 at all, or UDF.
func TestUnrecognizedAndUDF(t *testing.T) {
	blank := filepath.Join(t.TempDir(), "blank.img")
	if err := os.WriteFile(blank, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(blank)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Open(f); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("blank: %v", err)
	}
	udf := open(t, master(t, "genisoimage", map[string]string{"sources/install.wim": "wim"}, "-udf", "-J", "-V", "SSS_X64FREE"))
	if !udf.UDF() {
		t.Error("genisoimage -udf: no UDF recognised")
	}
	if open(t, master(t, "xorriso", configDrive, novaFlags...)).UDF() {
		t.Error("UDF found on an ISO 9660 volume")
	}
}

// CDFS's generated short names (FOO~1A.TXT) are not modelled: a lookup
// that could only succeed through one is refused as such.
func TestShortNamesAreNotModelled(t *testing.T) {
	v := open(t, master(t, "xorriso", map[string]string{"a-rather-long-file-name.json": "{}"}, "-J", "-V", "short"))
	if _, err := v.Stat(`A-RATH~1.JSO`); !errors.Is(err, ErrNotModelled) {
		t.Errorf("short name: %v", err)
	}
}
