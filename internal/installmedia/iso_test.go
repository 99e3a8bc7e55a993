package installmedia

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const readmeText = "This disc contains a \"UDF\" file system and requires an operating system\r\nthat supports the ISO-13346 \"UDF\" file system specification.\r\n"

func TestISO9660(t *testing.T) {
	srv22 := buildWIM(t, server2022Images)
	srv25 := buildWIM(t, server2025Images)
	win11 := buildWIM(t, windows11Images)
	esd := buildESD(t, win11)
	readme := writeFile(t, "README.TXT", []byte(readmeText))
	boot := writeFile(t, "boot.wim", []byte("a boot image"))

	tests := []struct {
		name      string
		files     map[string]string
		args      []string
		wantPath  string
		wantNames []testImage
	}{
		{"server 2022 install.wim", map[string]string{"sources/install.wim": srv22, "sources/boot.wim": boot, "setup.exe": readme}, nil, "sources/install.wim", server2022Images},
		{"server 2025 install.wim", map[string]string{"sources/install.wim": srv25}, nil, "sources/install.wim", server2025Images},
		{"windows 11 install.esd", map[string]string{"sources/install.esd": esd, "sources/boot.wim": boot}, nil, "sources/install.esd", windows11Images},
		{"wim before esd", map[string]string{"sources/install.esd": esd, "sources/install.wim": srv22}, nil, "sources/install.wim", server2022Images},
		{"mixed case", map[string]string{"Sources/Install.WIM": srv25}, nil, "Sources/Install.WIM", server2025Images},
		{"ISO 9660 names only (Joliet, no Rock Ridge)", map[string]string{"sources/install.wim": srv22}, []string{"-J", "--norock"}, "SOURCES/INSTALL.WIM", server2022Images},
		{"Rock Ridge without Joliet", map[string]string{"sources/install.wim": srv22}, []string{"-R"}, "sources/install.wim", server2022Images},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil {
				args = []string{"-J", "-R"}
			}
			iso := buildISO(t, tt.files, args...)
			m, err := ReadISO(iso)
			if err != nil {
				t.Fatal(err)
			}
			if m.Path != iso || m.Filesystem != "ISO 9660" || m.ImagePath != tt.wantPath {
				t.Errorf("media = %q %q %q, want %q ISO 9660 %q", m.Path, m.Filesystem, m.ImagePath, iso, tt.wantPath)
			}
			if got, want := imageNames(m.Images), testImageNames(tt.wantNames); !reflect.DeepEqual(got, want) {
				t.Fatalf("images = %q, want %q", got, want)
			}
			images, err := ReadISOImages(iso)
			if err != nil || !reflect.DeepEqual(images, m.Images) {
				t.Fatalf("ReadISOImages = %v, %v", images, err)
			}
		})
	}
}

func TestISOErrors(t *testing.T) {
	wim := buildWIM(t, server2022Images[:1])
	readme := writeFile(t, "README.TXT", []byte(readmeText))
	junk := writeFile(t, "junk", bytes.Repeat([]byte("junk"), 1000))

	t.Run("no install image", func(t *testing.T) {
		iso := buildISO(t, map[string]string{"README.TXT": readme, "sources/boot.wim": junk, "sources/setup.exe": junk}, "-J", "-R")
		_, err := ReadISO(iso)
		wantErrContains(t, err, iso+": found neither sources/install.wim nor sources/install.esd",
			"searched the ISO 9660 file system", "holds README.TXT, sources/", "sources/ holds boot.wim, setup.exe")
	})
	t.Run("README only", func(t *testing.T) {
		iso := buildISO(t, map[string]string{"README.TXT": readme}, "-J", "-R")
		_, err := ReadISO(iso)
		wantErrContains(t, err, "found neither", "its ISO 9660 file system holds README.TXT")
	})
	t.Run("split WIM", func(t *testing.T) {
		iso := buildISO(t, map[string]string{"sources/install.swm": wim, "sources/install2.swm": wim}, "-J", "-R")
		_, err := ReadISO(iso)
		wantErrContains(t, err, "split WIM install.swm, install2.swm", "not supported")
	})
	t.Run("install.wim is not a WIM", func(t *testing.T) {
		iso := buildISO(t, map[string]string{"sources/install.wim": junk}, "-J", "-R")
		_, err := ReadISO(iso)
		wantErrContains(t, err, iso+": reading sources/install.wim (ISO 9660 file system): not a WIM")
	})
	t.Run("sources is a file", func(t *testing.T) {
		iso := buildISO(t, map[string]string{"sources": junk}, "-J", "-R")
		_, err := ReadISO(iso)
		wantErrContains(t, err, "found neither", "holds sources")
	})
	t.Run("empty ISO", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			t.Fatal(err)
		}
		iso := buildISO(t, map[string]string{"/": empty}, "-J", "-R")
		_, err := ReadISO(iso)
		wantErrContains(t, err, "found neither", "is empty")
	})
	t.Run("not an ISO", func(t *testing.T) {
		_, err := ReadISO(wim)
		wantErrContains(t, err, wim+": not a readable ISO image", "ISO 9660")
		_, err = ReadISO(writeFile(t, "zero.iso", make([]byte, 64<<10)))
		wantErrContains(t, err, "not a readable ISO image")
		_, err = ReadISO(writeFile(t, "tiny.iso", []byte("x")))
		wantErrContains(t, err, "not a readable ISO image")
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := ReadISO(filepath.Join(t.TempDir(), "nope.iso"))
		wantErrContains(t, err, "nope.iso", "no such file")
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := ReadISO(dir)
		wantErrContains(t, err, "is a directory")
	})
	t.Run("ReadISOImages", func(t *testing.T) {
		iso := buildISO(t, map[string]string{"README.TXT": readme}, "-J", "-R")
		images, err := ReadISOImages(iso)
		if images != nil {
			t.Fatal(images)
		}
		wantErrContains(t, err, "found neither")
	})
}

// TestISOMultiExtent checks a file recorded as several ISO 9660 sections,
// as files of 4 GiB and more are. xorriso only splits files that large, so
// the test records two files, install.wim and install.wix, and renames the
// second into a second section of the first; the split falls inside the
// WIM's XML data.
func TestISOMultiExtent(t *testing.T) {
	data := readFile(t, buildWIM(t, server2022Images))
	xmlOff := int(leUint64(data[wimOffXMLResHdr+8:]))
	xmlEnd := xmlOff + int(leUint64(data[wimOffXMLResHdr+16:]))
	split := 2048 * (xmlOff/2048 + 1)
	if split >= xmlEnd {
		t.Fatalf("no sector boundary inside the XML data [%d, %d)", xmlOff, xmlEnd)
	}
	partA := writeFile(t, "a", data[:split])
	partB := writeFile(t, "b", data[split:])
	iso := buildISO(t, map[string]string{"sources/install.wim": partA, "sources/install.wix": partB}, "-J", "-R")
	img := readFile(t, iso)
	for _, r := range []struct{ from, to string }{{"INSTALL.WIX;1", "INSTALL.WIM;1"}, {"install.wix", "install.wim"}} {
		if bytes.Count(img, []byte(r.from)) != 1 {
			t.Fatalf("%q occurs %d times in the ISO", r.from, bytes.Count(img, []byte(r.from)))
		}
		img = bytes.Replace(img, []byte(r.from), []byte(r.to), 1)
	}
	// Mark the first record as continued in the next one.
	first := bytes.Index(img, []byte("INSTALL.WIM;1"))
	img[first-33+25] |= 0x80
	patched := writeFile(t, "multi.iso", img)

	m, err := ReadISO(patched)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := imageNames(m.Images), testImageNames(server2022Images); !reflect.DeepEqual(got, want) {
		t.Fatalf("images = %q, want %q", got, want)
	}
	vol, err := openISO9660(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	f, err := vol.open("sources/install.wim")
	if err != nil || f == nil {
		t.Fatalf("open: %v, %v", f, err)
	}
	if f.size != int64(len(data)) {
		t.Fatalf("joined size %d, want %d", f.size, len(data))
	}
	got := make([]byte, len(data))
	if _, err := f.r.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("joined data differs (%v)", err)
	}
	names, err := vol.list("sources")
	if err != nil || !reflect.DeepEqual(names, []string{"install.wim"}) {
		t.Fatalf("list = %q, %v", names, err)
	}
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestISOCorruption flips bytes of an ISO's volume descriptor and directory
// sectors: the reader must return errors, not panic.
func TestISOCorruption(t *testing.T) {
	iso := readFile(t, buildISO(t, map[string]string{"sources/install.wim": buildWIM(t, server2022Images[:1])}, "-J", "-R"))
	rng := newRand(2)
	for i := 0; i < 300; i++ {
		img := append([]byte(nil), iso...)
		for j := 0; j < 1+rng.Intn(8); j++ {
			// Volume descriptors and directories sit in the first 40 sectors.
			img[16*2048+rng.Intn(24*2048)] = byte(rng.Intn(256))
		}
		m, err := readMedia(bytes.NewReader(img), int64(len(img)))
		if err == nil && len(m.Images) == 0 {
			t.Fatalf("no error and no images")
		}
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error")
		}
	}
}
