package setup

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Medium is a mounted CD or floppy with the drive letter Windows PE gives
// it (floppies A: and B:, CDs from D: on, in device order).
type Medium struct {
	Device BlockDevice
	Letter string // "D"
	Dir    string // mount point
}

// Where names the medium for messages: `D: (CD sr0)`.
func (m Medium) Where() string {
	return m.Letter + ": (" + m.Device.Kind + " " + m.Device.Name + ")"
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

// FindAnswerFile looks for autounattend.xml in the root of the media in
// Windows' order (floppies, then CDs, each by drive letter) and returns the
// first one with its Windows path.
func FindAnswerFile(media []Medium) (path, source string, ok bool) {
	sorted := append([]Medium(nil), media...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].Letter < sorted[j].Letter
	})
	for _, m := range sorted {
		if p, found := LookupFold(m.Dir, "autounattend.xml"); found {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, m.Letter + `:\` + filepath.Base(p), true
			}
		}
	}
	return "", "", false
}

// DriverFolder is a PnpCustomizationsWinPE path resolved on a medium.
type DriverFolder struct {
	Path   string // as in the answer file
	Medium Medium
	Dir    string   // local directory
	INFs   []string // driver names: the .inf files' base names, lower case
}

// ResolveDriverPath finds a driver path (`E:\viostor\2k22\amd64`) on the
// media. The stand-in accepts the folder on any medium, whatever the drive
// letter, since Windows PE's letters depend on the device order; UNC paths
// are not reachable (no network in Windows PE here).
func ResolveDriverPath(media []Medium, path string) (DriverFolder, bool) {
	df := DriverFolder{Path: path}
	p := strings.ReplaceAll(path, "/", `\`)
	if strings.HasPrefix(p, `\\`) || len(p) < 2 || p[1] != ':' {
		return df, false
	}
	rel := strings.ReplaceAll(strings.TrimPrefix(p[2:], `\`), `\`, "/")
	letter := strings.ToUpper(p[:1])
	// The medium with the named letter first, then the others.
	ordered := append([]Medium(nil), media...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Letter == letter && ordered[j].Letter != letter })
	for _, m := range ordered {
		dir, ok := LookupFold(m.Dir, rel)
		if !ok {
			continue
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		df.Medium, df.Dir = m, dir
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.EqualFold(filepath.Ext(e.Name()), ".inf") {
				df.INFs = append(df.INFs, strings.ToLower(strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))))
			}
		}
		return df, true
	}
	return df, false
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
