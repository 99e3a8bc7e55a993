package setup

import (
	"os"
	"path/filepath"
)

// openMedia opens every CD and mounts every floppy read-only, and assigns
// drive letters.
func (g *Guest) openMedia(devs []BlockDevice) []Medium {
	return g.openMediaLog(devs, g.pe)
}

func (g *Guest) openMediaLog(devs []BlockDevice, logf func(format string, args ...any)) []Medium {
	var media []Medium
	cd, fd := 'D', 'A'
	for _, d := range devs {
		var m Medium
		var err error
		switch d.Kind {
		case "cd":
			m, err = openCDDevice(d, string(cd))
			cd++
		case "floppy":
			dir := filepath.Join(mediaRoot, d.Name)
			m = Medium{Device: d, Letter: string(fd), Dir: dir}
			err = Mount(d.Dev(), dir, "vfat", true, "iocharset=ascii,codepage=437")
			fd++
		default:
			continue
		}
		if err != nil {
			logf("%s: no readable medium (%v)", Medium{Device: d, Letter: m.Letter}.Where(), err)
			continue
		}
		if m.CD != nil {
			logf("%s: %s", m.Where(), m.CD.Describe())
		} else {
			logf("%s mounted", m.Where())
		}
		media = append(media, m)
	}
	return media
}

// openCDDevice reads a CD drive's medium through CDFS.
func openCDDevice(d BlockDevice, letter string) (Medium, error) {
	f, err := os.Open(d.Dev())
	if err != nil {
		return Medium{Device: d, Letter: letter}, err
	}
	m, err := OpenCD(d, letter, f, f)
	if err != nil {
		f.Close()
		return Medium{Device: d, Letter: letter}, err
	}
	return m, nil
}

func closeMedia(media []Medium) {
	for _, m := range media {
		_ = m.Close()
	}
}
