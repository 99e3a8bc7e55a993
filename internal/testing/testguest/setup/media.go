package setup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/cdfs"
)

// Medium is a CD or floppy with the drive letter Windows PE gives it
// (floppies A: and B:, CDs from D: on, in device order).
type Medium struct {
	Device BlockDevice
	Letter string // "D"
	// Dir is a floppy's mount point: FAT, read by Linux's vfat, which
	// matches names case-insensitively as Windows' FAT driver does.
	Dir string
	// CD is a CD's file system as Windows' CDFS reads it, straight from the
	// device (package cdfs): Windows sees on a CD only what CDFS finds, so
	// the stand-in does not mount CDs with Linux's more forgiving isofs.
	CD     *cdfs.Volume
	closer io.Closer
}

// Where names the medium for messages: `D: (CD sr0)`.
func (m Medium) Where() string {
	return m.Letter + ": (" + m.Device.Kind + " " + m.Device.Name + ")"
}

// OpenCD reads the ISO 9660 file system of a CD as Windows' CDFS mounts
// it. Media with UDF are refused: Windows mounts them with UDFS, which is
// tried before CDFS (CDFS mounts last: Windows-driver-samples
// filesys/cdfs/fsctrl.c CdMountVolume), and the stand-in does not model
// UDFS. Its own media are ISO 9660 only (xorriso).
func OpenCD(dev BlockDevice, letter string, r io.ReaderAt, closer io.Closer) (Medium, error) {
	vol, err := cdfs.Open(r)
	if err != nil {
		return Medium{}, err
	}
	if vol.UDF() {
		return Medium{}, fmt.Errorf("the medium carries a UDF file system, which Windows reads with UDFS before CDFS; the stand-in models only CDFS: %w", cdfs.ErrNotModelled)
	}
	return Medium{Device: dev, Letter: letter, CD: vol, closer: closer}, nil
}

// Close releases the medium: unmounts a floppy, closes a CD's device.
func (m Medium) Close() error {
	if m.CD != nil {
		if m.closer != nil {
			return m.closer.Close()
		}
		return nil
	}
	return Unmount(m.Dir)
}

// MediaEntry is a file or directory found on a medium.
type MediaEntry struct {
	// Path is the Windows path, with the names as recorded: `E:\viostor\2k22\amd64`.
	Path  string
	Name  string
	IsDir bool
	Size  int64
	// local is a floppy file's path on the mount.
	local string
}

// MediaFile is an open file of a medium.
type MediaFile interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}

// cdPath is rel from the root, `\`-separated, as CDFS is asked for it.
func cdPath(rel string) string {
	return `\` + strings.Trim(strings.ReplaceAll(rel, "/", `\`), `\`)
}

// cdErr puts the drive letter before a CDFS error: `D:\x: not found (...)`.
func (m Medium) cdErr(err error) error {
	var nf *cdfs.NotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("%s:%w", m.Letter, err)
	}
	return fmt.Errorf("%s: %w", m.Where(), err)
}

func windowsPath(letter, rel string) string {
	return letter + `:\` + strings.Trim(strings.ReplaceAll(rel, "/", `\`), `\`)
}

// Stat finds a slash- or backslash-separated path below the medium's root
// as Windows finds it: on a CD through CDFS (cdfs.Volume.Stat), on a
// floppy case-insensitively. Errors satisfy errors.Is(err,
// fs.ErrNotExist) when Windows reports the file not found, and say why.
func (m Medium) Stat(rel string) (MediaEntry, error) {
	if m.CD != nil {
		f, err := m.CD.Stat(cdPath(rel))
		if err != nil {
			return MediaEntry{}, m.cdErr(err)
		}
		return MediaEntry{Path: m.Letter + ":" + f.Path(), Name: f.Name(), IsDir: f.IsDir(), Size: f.Size()}, nil
	}
	rel = strings.ReplaceAll(rel, `\`, "/")
	p, ok := LookupFold(m.Dir, rel)
	if !ok {
		return MediaEntry{}, fmt.Errorf("%s: not found: %w", windowsPath(m.Letter, rel), fs.ErrNotExist)
	}
	st, err := os.Stat(p)
	if err != nil {
		return MediaEntry{}, err
	}
	relFound, _ := filepath.Rel(m.Dir, p)
	return MediaEntry{Path: windowsPath(m.Letter, relFound), Name: filepath.Base(p), IsDir: st.IsDir(), Size: st.Size(), local: p}, nil
}

// Open opens a file of the medium for reading.
func (m Medium) Open(rel string) (MediaFile, error) {
	if m.CD != nil {
		f, err := m.CD.Stat(cdPath(rel))
		if err != nil {
			return nil, m.cdErr(err)
		}
		r, err := f.Open()
		if err != nil {
			return nil, err
		}
		return cdFile{r}, nil
	}
	e, err := m.Stat(rel)
	if err != nil {
		return nil, err
	}
	if e.IsDir {
		return nil, fmt.Errorf("%s: is a directory", e.Path)
	}
	f, err := os.Open(e.local)
	if err != nil {
		return nil, err
	}
	return osFile{f, e.Size}, nil
}

type cdFile struct{ *cdfs.Reader }

func (cdFile) Close() error { return nil }

type osFile struct {
	*os.File
	size int64
}

func (f osFile) Size() int64 { return f.size }

// ReadFile reads a whole file of the medium.
func (m Medium) ReadFile(rel string) ([]byte, error) {
	f, err := m.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, f.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ReadDir lists a directory of the medium.
func (m Medium) ReadDir(rel string) ([]MediaEntry, error) {
	if m.CD != nil {
		ents, err := m.CD.ReadDir(cdPath(rel))
		if err != nil {
			return nil, m.cdErr(err)
		}
		out := make([]MediaEntry, 0, len(ents))
		for _, e := range ents {
			out = append(out, MediaEntry{Name: e.Name, IsDir: e.IsDir, Size: e.Size, Path: windowsPath(m.Letter, rel+"/"+e.Name)})
		}
		return out, nil
	}
	e, err := m.Stat(rel)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(e.local)
	if err != nil {
		return nil, err
	}
	var out []MediaEntry
	for _, d := range ents {
		out = append(out, MediaEntry{Name: d.Name(), IsDir: d.IsDir(), Path: e.Path + `\` + d.Name(), local: filepath.Join(e.local, d.Name())})
	}
	return out, nil
}

// LookupFold finds a slash-separated path below dir, matching every
// component case-insensitively as Windows does. It returns the real path.
func LookupFold(dir, rel string) (string, bool) {
	cur := dir
	for _, part := range strings.Split(strings.Trim(filepath.ToSlash(rel), "/"), "/") {
		if part == "" {
			continue
		}
		entries, err := os.ReadDir(cur)
		if err != nil {
			return "", false
		}
		found := ""
		for _, e := range entries {
			if e.Name() == part {
				found = e.Name()
				break
			}
			if found == "" && strings.EqualFold(e.Name(), part) {
				found = e.Name()
			}
		}
		if found == "" {
			return "", false
		}
		cur = filepath.Join(cur, found)
	}
	return cur, true
}

// notFoundOnly reports a lookup that failed because Windows finds no such
// file; any other error (a corrupt medium, something not modelled) is
// worth reporting on its own.
func notFoundOnly(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// FindAnswerFile looks for autounattend.xml in the root of the media in
// Windows' order (floppies, then CDs, each by drive letter) and returns the
// first one's content with its Windows path. problems lists the media that
// could not be searched and why.
func FindAnswerFile(media []Medium) (raw []byte, source string, problems []string, ok bool) {
	sorted := append([]Medium(nil), media...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].Letter < sorted[j].Letter
	})
	for _, m := range sorted {
		e, err := m.Stat("autounattend.xml")
		if err != nil {
			if !notFoundOnly(err) {
				problems = append(problems, err.Error())
			}
			continue
		}
		if e.IsDir {
			continue
		}
		b, err := m.ReadFile("autounattend.xml")
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		return b, e.Path, problems, true
	}
	return nil, "", problems, false
}

// DriverFolder is a PnpCustomizationsWinPE path resolved on a medium.
type DriverFolder struct {
	Path   string // as in the answer file
	Medium Medium
	Dir    string   // the folder's Windows path on the medium it was found on
	INFs   []string // driver names: the .inf files' base names, lower case
}

// ResolveDriverPath finds a driver path (`E:\viostor\2k22\amd64`) on the
// media. The stand-in accepts the folder on any medium, whatever the drive
// letter, since Windows PE's letters depend on the device order; UNC paths
// are not reachable (no network in Windows PE here). When the folder is
// nowhere, misses says on each medium why.
func ResolveDriverPath(media []Medium, path string) (df DriverFolder, misses []string, ok bool) {
	df = DriverFolder{Path: path}
	p := strings.ReplaceAll(path, "/", `\`)
	if strings.HasPrefix(p, `\\`) || len(p) < 2 || p[1] != ':' {
		return df, []string{"not a drive letter path (no network in Windows PE)"}, false
	}
	rel := strings.TrimPrefix(p[2:], `\`)
	letter := strings.ToUpper(p[:1])
	// The medium with the named letter first, then the others.
	ordered := append([]Medium(nil), media...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Letter == letter && ordered[j].Letter != letter })
	for _, m := range ordered {
		e, err := m.Stat(rel)
		if err != nil {
			misses = append(misses, err.Error())
			continue
		}
		if !e.IsDir {
			misses = append(misses, e.Path+": not a folder")
			continue
		}
		ents, err := m.ReadDir(rel)
		if err != nil {
			misses = append(misses, err.Error())
			continue
		}
		df.Medium, df.Dir = m, e.Path
		for _, ent := range ents {
			if !ent.IsDir && strings.EqualFold(filepath.Ext(ent.Name), ".inf") {
				df.INFs = append(df.INFs, strings.ToLower(strings.TrimSuffix(ent.Name, filepath.Ext(ent.Name))))
			}
		}
		return df, nil, true
	}
	return df, misses, false
}

// DriverModules maps virtio-win driver names to the kernel modules that
// play them.
var DriverModules = map[string]string{
	"viostor": "virtio_blk",
	"vioscsi": "virtio_scsi",
	"netkvm":  "virtio_net",
	// vioser, the VirtIO Serial driver: the ports the QEMU guest agent
	// talks through.
	"vioser": "virtio_console",
}

// DriverFor names the virtio-win driver a virtio PCI function needs.
var DriverFor = map[string]string{
	"virtio-blk":  "viostor",
	"virtio-scsi": "vioscsi",
	"virtio-net":  "NetKVM",
}
