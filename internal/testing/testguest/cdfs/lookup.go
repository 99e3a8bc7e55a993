package cdfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Directory record flags (ECMA-119 9.1.6; cd.h CD_ATTRIBUTE_*).
const (
	flagDirectory  = 0x02
	flagAssociated = 0x04
	flagMulti      = 0x80
)

// Directories larger than this are refused rather than read into memory;
// a CD directory is a few sectors.
const maxDirSize = 16 << 20

// dirRecord is one directory record (ECMA-119 9.1).
type dirRecord struct {
	extent   uint32 // first block of the data, after the extended attribute record
	size     uint32
	flags    byte
	unitSize byte // interleaving: file unit size and gap
	gap      byte
	rawName  []byte
}

// parseRecord reads the record at the start of b (dirsup.c
// CdUpdateDirentFromRawDirent): a record needs its 33 bytes of fields and
// a name of at least one byte.
func parseRecord(b []byte, where string) (dirRecord, error) {
	if len(b) < 34 || int(b[0]) < 34 || int(b[0]) > len(b) {
		return dirRecord{}, fileCorrupt("%s: directory record of %d bytes", where, b[0])
	}
	nameLen := int(b[32])
	if nameLen == 0 {
		return dirRecord{}, fileCorrupt("%s: directory record with an empty name", where)
	}
	if 33+nameLen > int(b[0]) {
		return dirRecord{}, fileCorrupt("%s: name of %d bytes runs past its %d-byte directory record", where, nameLen, b[0])
	}
	return dirRecord{
		extent:   binary.LittleEndian.Uint32(b[2:]) + uint32(b[1]),
		size:     binary.LittleEndian.Uint32(b[10:]),
		flags:    b[25],
		unitSize: b[26],
		gap:      b[27],
		rawName:  b[33 : 33+nameLen],
	}, nil
}

// constant reports the "." and ".." records: a one-byte name 0 or 1 on a
// directory (CdUpdateDirentName).
func (r dirRecord) constant() bool {
	return r.flags&flagDirectory != 0 && len(r.rawName) == 1 && r.rawName[0] <= 1
}

// readDir reads the records of the directory starting at block extent. Its
// size is that of its own "." record (cachesup.c CdCreateInternalStream);
// records do not span sectors, and a zero length byte ends a sector's
// records (dirsup.c CdLookupNextDirent).
func (v *Volume) readDir(extent uint32, where string) ([]dirRecord, error) {
	first, err := readSector(v.r, int64(extent))
	if err != nil {
		return nil, diskCorrupt("%s: %v", where, err)
	}
	self, err := parseRecord(first, where)
	if err != nil {
		return nil, err
	}
	if !self.constant() || self.rawName[0] != 0 {
		return nil, fileCorrupt("%s: the first directory record is not the directory's own \".\" record", where)
	}
	if self.size == 0 {
		return nil, fileCorrupt("%s: the \".\" record gives the directory a size of 0", where)
	}
	if self.size > maxDirSize {
		return nil, fmt.Errorf("%s: a directory of %d bytes: %w", where, self.size, ErrNotModelled)
	}
	var out []dirRecord
	for s := uint32(0); s*SectorSize < self.size; s++ {
		b := first
		if s > 0 {
			if b, err = readSector(v.r, int64(extent+s)); err != nil {
				return nil, diskCorrupt("%s: %v", where, err)
			}
		}
		limit := min(SectorSize, int(self.size-s*SectorSize))
		for off := 0; off < limit && b[off] != 0; {
			l := int(b[off])
			if off+l > limit {
				return nil, fileCorrupt("%s: directory record at offset %d runs past its sector", where, int(s)*SectorSize+off)
			}
			rec, err := parseRecord(b[off:off+l], where)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
			off += l
		}
	}
	return out, nil
}

// entryName is a directory record's name as CDFS matches it (dirsup.c
// CdUpdateDirentName, namesup.c CdConvertNameToCdName): the version after
// ";" split off, a trailing dot dropped.
func (v *Volume) entryName(r dirRecord, where string) (name, version string, err error) {
	full, err := v.decodeName(r.rawName)
	if err != nil {
		return "", "", err
	}
	name, version = splitVersion(full)
	if name == "" {
		return "", "", fileCorrupt("%s: directory record named %q", where, full)
	}
	name = strings.TrimSuffix(name, ".")
	if !legalName(name) {
		return "", "", fileCorrupt("%s: directory record named %q holds a character Windows does not allow", where, full)
	}
	return name, version, nil
}

// splitVersion splits "NAME;1" into the name and the version; a ";" with
// nothing after it gives no version (CdConvertNameToCdName).
func splitVersion(s string) (name, version string) {
	i := strings.IndexByte(s, ';')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// legalName is namesup.c CdIsLegalName: below 0xff, the characters HPFS
// allows (FsRtlIsAnsiCharacterLegalHpfs) and `"<>|`.
func legalName(s string) bool {
	for _, c := range s {
		if c < 0x20 || strings.ContainsRune(`*/:?\`, c) {
			return false
		}
	}
	return true
}

// File is a file or directory found on the volume.
type File struct {
	v       *Volume
	path    string // `\`-separated, with the names as recorded
	dir     bool
	size    int64
	extents []extent
	// Directories: their first block and path table ordinal.
	dirExtent uint32
	ordinal   int
}

type extent struct {
	block uint32
	size  int64
}

// Path is the file's path from the root, `\`-separated, with its names as
// recorded on the medium.
func (f *File) Path() string { return f.path }

// Name is the last component of Path.
func (f *File) Name() string { return f.path[strings.LastIndexByte(f.path, '\\')+1:] }

// IsDir reports a directory.
func (f *File) IsDir() bool { return f.dir }

// Size is the file's length in bytes (0 for a directory).
func (f *File) Size() int64 { return f.size }

// NotFoundError is a lookup that fails as CreateFile fails on Windows:
// STATUS_OBJECT_PATH_NOT_FOUND for a directory of the path,
// STATUS_OBJECT_NAME_NOT_FOUND for its last component.
type NotFoundError struct {
	Path   string
	Status string
	// Reason says why CDFS does not find it.
	Reason string
}

func (e *NotFoundError) Error() string {
	return e.Path + ": not found (" + e.Status + "): " + e.Reason
}

// Is makes errors.Is(err, fs.ErrNotExist) hold.
func (e *NotFoundError) Is(target error) bool { return target == fs.ErrNotExist }

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.FieldsFunc(p, func(r rune) bool { return r == '\\' || r == '/' }) {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func (v *Volume) rootFile() *File {
	return &File{v: v, path: `\`, dir: true, dirExtent: v.root.extent, ordinal: 1}
}

func joinPath(dir, name string) string {
	if dir == `\` {
		return `\` + name
	}
	return dir + `\` + name
}

// Stat finds a path (`\` or `/` separated, from the root) as CDFS opens
// it (create.c CdCommonCreate): every directory through the path table,
// the last component through the path table and then, for a file, the
// directory's records.
func (v *Volume) Stat(path string) (*File, error) {
	parts := splitPath(path)
	cur := v.rootFile()
	for i, part := range parts {
		last := i == len(parts)-1
		dir, err := v.findPathEntry(cur, part)
		if err != nil {
			return nil, err
		}
		if dir != nil {
			cur = dir
			continue
		}
		if !last {
			return nil, &NotFoundError{Path: path, Status: "STATUS_OBJECT_PATH_NOT_FOUND", Reason: v.whyNoDirectory(cur, part)}
		}
		f, err := v.findFile(cur, part)
		if err != nil {
			return nil, err
		}
		if f == nil {
			reason := fmt.Sprintf("no file %q in %s", part, cur.path)
			if isShortName(part) {
				return nil, fmt.Errorf("%s: %s; CDFS would also try it as a generated 8.3 short name (CdFindFileByShortName): %w", path, reason, ErrNotModelled)
			}
			if v.dirRecordNames(cur, part) {
				reason = v.whyNoDirectory(cur, part)
			}
			return nil, &NotFoundError{Path: path, Status: "STATUS_OBJECT_NAME_NOT_FOUND", Reason: reason}
		}
		return f, nil
	}
	return cur, nil
}

// findPathEntry looks for a child directory of dir in the path table
// (pathsup.c CdFindPathEntry): the entries whose parent is dir's ordinal,
// which follow dir's own entry; the scan ends past them.
func (v *Volume) findPathEntry(dir *File, name string) (*File, error) {
	entries, err := v.pathTableEntries()
	if err != nil {
		return nil, err
	}
	if strings.Contains(name, ";") {
		return nil, nil // directories have no version
	}
	want := strings.ToUpper(name)
	for i := dir.ordinal; i < len(entries); i++ {
		e := entries[i]
		if int(e.parent) > dir.ordinal {
			break
		}
		if int(e.parent) == dir.ordinal && e.upper == want {
			return &File{v: v, path: joinPath(dir.path, e.name), dir: true, dirExtent: e.extent, ordinal: i + 1}, nil
		}
	}
	return nil, nil
}

// whyNoDirectory explains a directory the path table does not have.
func (v *Volume) whyNoDirectory(dir *File, name string) string {
	table := "path table"
	if v.joliet {
		table = "Joliet path table"
	}
	if v.pathTableSize == 0 {
		return fmt.Sprintf("the volume's %s is empty (0 bytes), so CDFS finds no directory below the root; %q in %s is not reachable", table, name, dir.path)
	}
	if v.dirRecordNames(dir, name) {
		return fmt.Sprintf("%s names a directory %q in its records, but the %s (%d bytes) has no entry for it, and CDFS finds directories only there", dir.path, name, table, v.pathTableSize)
	}
	return fmt.Sprintf("the %s has no directory %q under %s", table, name, dir.path)
}

// dirRecordNames reports whether dir's records hold a directory named
// name (for messages only: CDFS does not open directories this way).
func (v *Volume) dirRecordNames(dir *File, name string) bool {
	recs, err := v.readDir(dir.dirExtent, dir.path)
	if err != nil {
		return false
	}
	want := strings.ToUpper(name)
	for _, r := range recs {
		if r.flags&flagDirectory == 0 || r.constant() {
			continue
		}
		if n, _, err := v.entryName(r, dir.path); err == nil && strings.ToUpper(n) == want {
			return true
		}
	}
	return false
}

// isShortName reports a name with CDFS's "~<hex>" short name marker
// before the extension (namesup.c CdShortNameDirentOffset).
func isShortName(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	i := strings.LastIndexByte(base, '~')
	if i < 0 || i == len(base)-1 {
		return false
	}
	for _, c := range base[i+1:] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// fileEntry is a file's first record with the records of its further
// extents (multi-extent flag).
type fileEntry struct {
	first   dirRecord
	extents []dirRecord
}

// files groups dir's records into files and directories as CDFS walks
// them (dirsup.c CdLookupNextInitialFileDirent); "." and ".." and
// associated files are left out.
func (v *Volume) files(dir *File) ([]fileEntry, error) {
	recs, err := v.readDir(dir.dirExtent, dir.path)
	if err != nil {
		return nil, err
	}
	var out []fileEntry
	for i := 0; i < len(recs); i++ {
		e := fileEntry{first: recs[i], extents: []dirRecord{recs[i]}}
		for recs[i].flags&flagMulti != 0 {
			i++
			if i == len(recs) {
				return nil, fileCorrupt("%s: the last record of a multi-extent file is missing", dir.path)
			}
			e.extents = append(e.extents, recs[i])
		}
		if e.first.constant() || e.first.flags&flagAssociated != 0 {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// findFile scans dir's records for a file (dirsup.c CdFindFile):
// directories are not considered, the name is matched upper-cased and the
// version only when name has one (CdIsNameInExpression).
func (v *Volume) findFile(dir *File, name string) (*File, error) {
	entries, err := v.files(dir)
	if err != nil {
		return nil, err
	}
	wantName, wantVersion := splitVersion(name)
	wantName, wantVersion = strings.ToUpper(wantName), strings.ToUpper(wantVersion)
	for _, e := range entries {
		if e.first.flags&flagDirectory != 0 {
			continue
		}
		n, ver, err := v.entryName(e.first, dir.path)
		if err != nil {
			return nil, err
		}
		if strings.ToUpper(n) != wantName || (wantVersion != "" && strings.ToUpper(ver) != wantVersion) {
			continue
		}
		return v.fileOf(dir, n, e)
	}
	return nil, nil
}

func (v *Volume) fileOf(dir *File, name string, e fileEntry) (*File, error) {
	f := &File{v: v, path: joinPath(dir.path, name)}
	for _, r := range e.extents {
		if r.unitSize != 0 || r.gap != 0 {
			return nil, fmt.Errorf("%s: interleaved file (unit %d, gap %d): %w", f.path, r.unitSize, r.gap, ErrNotModelled)
		}
		f.extents = append(f.extents, extent{block: r.extent, size: int64(r.size)})
		f.size += int64(r.size)
	}
	return f, nil
}

// Entry is one name of a directory listing.
type Entry struct {
	Name  string
	IsDir bool
	Size  int64
}

// ReadDir lists a directory as Windows enumerates it (dirctrl.c
// CdEnumerateIndex): files and directories from its records, one entry
// per name (the highest version, which comes first), without "." and "..".
// A directory listed here is opened through the path table all the same.
func (v *Volume) ReadDir(path string) ([]Entry, error) {
	dir, err := v.Stat(path)
	if err != nil {
		return nil, err
	}
	if !dir.dir {
		return nil, fmt.Errorf("%s: not a directory (STATUS_NOT_A_DIRECTORY)", path)
	}
	entries, err := v.files(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	prev := ""
	for _, e := range entries {
		n, _, err := v.entryName(e.first, dir.path)
		if err != nil {
			return nil, err
		}
		if strings.ToUpper(n) == prev {
			continue
		}
		prev = strings.ToUpper(n)
		ent := Entry{Name: n, IsDir: e.first.flags&flagDirectory != 0}
		if !ent.IsDir {
			for _, r := range e.extents {
				ent.Size += int64(r.size)
			}
		}
		out = append(out, ent)
	}
	return out, nil
}

// Reader reads a file's data.
type Reader struct {
	f   *File
	off int64
}

// Open opens a file for reading.
func (f *File) Open() (*Reader, error) {
	if f.dir {
		return nil, fmt.Errorf("%s: is a directory (STATUS_FILE_IS_A_DIRECTORY)", f.path)
	}
	return &Reader{f: f}, nil
}

// Size is the file's length.
func (r *Reader) Size() int64 { return r.f.size }

// ReadAt reads the file's extents in order.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("cdfs: negative offset")
	}
	n := 0
	pos := int64(0)
	for _, e := range r.f.extents {
		if len(p) == 0 {
			break
		}
		if off >= pos+e.size {
			pos += e.size
			continue
		}
		in := off - pos
		want := min(int64(len(p)), e.size-in)
		got, err := r.f.v.r.ReadAt(p[:want], int64(e.block)*SectorSize+in)
		n += got
		if int64(got) < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("%s: reading block %d: %w", r.f.path, e.block, err)
		}
		p, off, pos = p[want:], off+want, pos+e.size
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// Read reads sequentially.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.f.size {
		return 0, io.EOF
	}
	if rest := r.f.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadFile reads a whole file.
func (v *Volume) ReadFile(path string) ([]byte, error) {
	f, err := v.Stat(path)
	if err != nil {
		return nil, err
	}
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	b := make([]byte, f.size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
