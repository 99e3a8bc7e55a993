package installmedia

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/kdomanski/iso9660"
)

// Paths of the Windows image file, tried in order.
var imagePaths = []string{"sources/install.wim", "sources/install.esd"}

// Media is what ReadISO found on an install ISO.
type Media struct {
	// Path is the ISO's path as given to ReadISO.
	Path string
	// Filesystem is the file system the image file was read from:
	// "UDF 1.02", "UDF 2.50", ... or "ISO 9660".
	Filesystem string
	// ImagePath is the image file's path on the ISO, as recorded there
	// (for example "sources/install.wim" or "SOURCES/INSTALL.ESD").
	ImagePath string
	// Images lists the Windows images in index order.
	Images []Image
}

// FindImage returns the image called name; see the package-level
// FindImage. Errors name the ISO.
func (m *Media) FindImage(name string) (Image, error) {
	return FindImage(m.Images, name, m.Path)
}

// mediaFile is a file found on a volume.
type mediaFile struct {
	path string // as recorded on the volume
	r    io.ReaderAt
	size int64
}

// volume is a file system on the ISO.
type volume interface {
	kind() string
	// open returns the file at a slash-separated path, matched
	// case-insensitively; nil (and no error) when there is none.
	open(path string) (*mediaFile, error)
	// list names a directory's entries (directories end in "/"); nil
	// when there is no such directory.
	list(path string) ([]string, error)
}

// ReadISOImages reads the list of Windows images on a Windows install ISO;
// see ReadISO.
func ReadISOImages(isoPath string) ([]Image, error) {
	m, err := ReadISO(isoPath)
	if err != nil {
		return nil, err
	}
	return m.Images, nil
}

// ReadISO opens a Windows install ISO, finds sources/install.wim or else
// sources/install.esd (case-insensitively) on its UDF file system or else
// its ISO 9660 one, and reads the image list from the file's header and
// XML data. It reads a few kilobytes, whatever the ISO's size.
func ReadISO(isoPath string) (*Media, error) {
	f, size, err := openImage(isoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := readMedia(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", isoPath, err)
	}
	m.Path = isoPath
	return m, nil
}

// openImage opens an ISO image file and returns its size.
func openImage(isoPath string) (*os.File, int64, error) {
	f, err := os.Open(isoPath)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a directory, not an ISO image", isoPath)
	}
	return f, st.Size(), nil
}

// readMedia is ReadISO on an open image of the given size.
func readMedia(r io.ReaderAt, size int64) (*Media, error) {
	vols, problems, err := openVolumes(r, size)
	if err != nil {
		return nil, err
	}

	var holds []string
	for _, vol := range vols {
		for _, p := range imagePaths {
			f, err := vol.open(p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("looking up %s on its %s file system: %v", p, vol.kind(), err))
				continue
			}
			if f == nil {
				continue
			}
			images, err := readWIMImages(f.r, f.size)
			if err != nil {
				return nil, fmt.Errorf("reading %s (%s file system): %w", f.path, vol.kind(), err)
			}
			return &Media{Filesystem: vol.kind(), ImagePath: f.path, Images: images}, nil
		}
		holds = append(holds, describeVolume(vol))
	}
	msg := fmt.Sprintf("found neither %s (searched %s)", strings.Join(imagePaths, " nor "), kinds(vols))
	if len(holds) > 0 {
		msg += "; " + strings.Join(holds, "; ")
	}
	if len(problems) > 0 {
		msg += "; " + strings.Join(problems, "; ")
	}
	return nil, errors.New(msg)
}

// openVolumes opens the ISO's UDF file system, then its ISO 9660 one. It
// fails only when neither can be read; problems says what went wrong with a
// file system that was skipped.
func openVolumes(r io.ReaderAt, size int64) (vols []volume, problems []string, err error) {
	switch udf, err := openUDF(r, size); {
	case err == nil:
		vols = append(vols, udf)
	case errors.Is(err, errNoUDF):
	default:
		problems = append(problems, fmt.Sprintf("cannot read its UDF file system: %v", err))
	}
	iso, err := openISO9660(r)
	if err == nil {
		vols = append(vols, iso)
	} else if len(vols) == 0 {
		problems = append(problems, fmt.Sprintf("cannot read its ISO 9660 file system: %v", err))
	}
	if len(vols) == 0 {
		return nil, nil, fmt.Errorf("not a readable ISO image: %s", strings.Join(problems, "; "))
	}
	return vols, problems, nil
}

// ListDir returns the names in the directory dir (slash-separated, matched
// case-insensitively; "" is the root) of an ISO, directories ending in "/",
// from the first file system that has the directory. It returns nil, and no
// error, when no file system has it.
func ListDir(isoPath, dir string) ([]string, error) {
	f, size, err := openImage(isoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vols, _, err := openVolumes(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", isoPath, err)
	}
	for _, vol := range vols {
		names, err := vol.list(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: listing %s on its %s file system: %w", isoPath, dir, vol.kind(), err)
		}
		if names != nil {
			return names, nil
		}
	}
	return nil, nil
}

func kinds(vols []volume) string {
	var k []string
	for _, v := range vols {
		k = append(k, "the "+v.kind()+" file system")
	}
	return strings.Join(k, " and ")
}

// describeVolume says what a volume holds, for errors: the top level and
// the sources directory, with a hint for split WIMs.
func describeVolume(vol volume) string {
	const maxNames = 20
	show := func(names []string) string {
		sort.Strings(names)
		more := ""
		if len(names) > maxNames {
			more = fmt.Sprintf(", and %d more", len(names)-maxNames)
			names = names[:maxNames]
		}
		return strings.Join(names, ", ") + more
	}
	top, err := vol.list("")
	if err != nil {
		return fmt.Sprintf("its %s file system cannot be listed: %v", vol.kind(), err)
	}
	if len(top) == 0 {
		return fmt.Sprintf("its %s file system is empty", vol.kind())
	}
	s := fmt.Sprintf("its %s file system holds %s", vol.kind(), show(top))
	sources, err := vol.list("sources")
	if err != nil || sources == nil {
		return s
	}
	var swm []string
	for _, n := range sources {
		if strings.HasSuffix(strings.ToLower(n), ".swm") {
			swm = append(swm, n)
		}
	}
	if len(swm) > 0 {
		return s + fmt.Sprintf(", and its sources directory holds the split WIM %s: %s", show(swm), errSplitWIMNotes)
	}
	if len(sources) == 0 {
		return s + " (the sources directory is empty)"
	}
	return s + fmt.Sprintf(" (sources/ holds %s)", show(sources))
}

// isoVolume reads the ISO 9660 file system (with Rock Ridge names where
// recorded) through github.com/kdomanski/iso9660.
type isoVolume struct {
	img *iso9660.Image
}

func openISO9660(r io.ReaderAt) (v *isoVolume, err error) {
	defer recoverISO(&err)
	img, err := iso9660.OpenImage(r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("image too short for an ISO 9660 volume descriptor set")
		}
		return nil, err
	}
	if _, err := img.RootDir(); err != nil {
		return nil, errors.New("no ISO 9660 primary volume descriptor")
	}
	return &isoVolume{img: img}, nil
}

// recoverISO turns a panic of the ISO 9660 library on a malformed image
// into an error.
func recoverISO(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("malformed ISO 9660 file system (%v)", p)
	}
}

func (v *isoVolume) kind() string { return "ISO 9660" }

// children returns the entries of the directory at path, or nil when there
// is no such directory.
func (v *isoVolume) children(path string) ([]*iso9660.File, error) {
	dir, err := v.img.RootDir()
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(path, "/") {
		if part == "" {
			continue
		}
		kids, err := dir.GetChildren()
		if err != nil {
			return nil, err
		}
		dir = nil
		for _, k := range kids {
			if k.IsDir() && strings.EqualFold(k.Name(), part) {
				dir = k
				break
			}
		}
		if dir == nil {
			return nil, nil
		}
	}
	kids, err := dir.GetChildren()
	if kids == nil && err == nil {
		kids = []*iso9660.File{}
	}
	return kids, err
}

// open implements volume. A file larger than 4 GiB is recorded as several
// consecutive directory records of the same name (multi-extent); their
// sections are joined in order.
func (v *isoVolume) open(path string) (f *mediaFile, err error) {
	defer recoverISO(&err)
	dir, base := "", path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		dir, base = path[:i], path[i+1:]
	}
	kids, err := v.children(dir)
	if err != nil || kids == nil {
		return nil, err
	}
	var sections []*iso9660.File
	for i, k := range kids {
		if k.IsDir() || !strings.EqualFold(k.Name(), base) {
			continue
		}
		sections = append(sections, k)
		for _, next := range kids[i+1:] {
			if next.IsDir() || next.Name() != k.Name() {
				break
			}
			sections = append(sections, next)
		}
		break
	}
	if len(sections) == 0 {
		return nil, nil
	}
	mr := &multiSection{}
	for i, s := range sections {
		sr, ok := s.Reader().(*io.SectionReader)
		if !ok {
			return nil, fmt.Errorf("cannot read %s: unexpected reader from the ISO 9660 library", path)
		}
		if i < len(sections)-1 && s.Size()%2048 != 0 {
			return nil, fmt.Errorf("%s is recorded in %d sections, and section %d is not a whole number of sectors", path, len(sections), i+1)
		}
		mr.add(sr, s.Size())
	}
	recorded := sections[0].Name()
	if dir != "" {
		recorded = dirName(v, dir) + "/" + recorded
	}
	return &mediaFile{path: recorded, r: mr, size: mr.size}, nil
}

// dirName returns the recorded spelling of a top-level directory.
func dirName(v *isoVolume, dir string) string {
	root, err := v.img.RootDir()
	if err != nil {
		return dir
	}
	kids, err := root.GetChildren()
	if err != nil {
		return dir
	}
	for _, k := range kids {
		if k.IsDir() && strings.EqualFold(k.Name(), dir) {
			return k.Name()
		}
	}
	return dir
}

// list implements volume.
func (v *isoVolume) list(path string) (names []string, err error) {
	defer recoverISO(&err)
	kids, err := v.children(path)
	if err != nil || kids == nil {
		return nil, err
	}
	names = []string{}
	for i, k := range kids {
		if i > 0 && kids[i-1].Name() == k.Name() {
			continue // a further section of a multi-extent file
		}
		if k.IsDir() {
			names = append(names, k.Name()+"/")
		} else {
			names = append(names, k.Name())
		}
	}
	return names, nil
}

// multiSection joins readers into one.
type multiSection struct {
	parts []io.ReaderAt
	offs  []int64
	size  int64
}

func (m *multiSection) add(r io.ReaderAt, n int64) {
	m.parts = append(m.parts, r)
	m.offs = append(m.offs, m.size)
	m.size += n
}

func (m *multiSection) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	total := 0
	for len(p) > 0 {
		if off >= m.size {
			return total, io.EOF
		}
		i := sort.Search(len(m.offs), func(i int) bool { return m.offs[i] > off }) - 1
		end := m.size
		if i+1 < len(m.offs) {
			end = m.offs[i+1]
		}
		n := int64(len(p))
		if n > end-off {
			n = end - off
		}
		got, err := m.parts[i].ReadAt(p[:n], off-m.offs[i])
		total += got
		if int64(got) < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return total, err
		}
		off += n
		p = p[n:]
	}
	return total, nil
}
