package linuximage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
)

// OSRelease is what os-release(5) says about the installed system.
type OSRelease struct {
	ID              string // "debian", "ubuntu", "fedora", "rhel", "opensuse-leap" ...
	IDLike          []string
	Name            string
	PrettyName      string
	VersionID       string // "12", "24.04", "9.4"; empty on rolling releases
	VersionCodename string
	BuildID         string
	// Partition is the partition the file was read from (0: whole disk).
	Partition int
	// Path is where it was read: /etc/os-release or /usr/lib/os-release.
	Path string
}

// ParseOSRelease reads os-release(5)'s format: KEY=value lines, values in
// shell quoting ('…' or "…" with \" \\ \$ \` escapes), # comments.
func ParseOSRelease(b []byte) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("os-release line %d: %q is not KEY=value", n, line)
		}
		v, err := unquote(val)
		if err != nil {
			return nil, fmt.Errorf("os-release line %d (%s): %w", n, key, err)
		}
		vars[key] = v
	}
	return vars, sc.Err()
}

func unquote(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch q := s[0]; q {
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated quote in %s", s)
		}
		return s[1 : len(s)-1], nil
	case '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", fmt.Errorf("unterminated quote in %s", s)
		}
		var b strings.Builder
		in := s[1 : len(s)-1]
		for i := 0; i < len(in); i++ {
			if in[i] == '\\' && i+1 < len(in) && strings.ContainsRune("\"\\$`", rune(in[i+1])) {
				i++
			}
			b.WriteByte(in[i])
		}
		return b.String(), nil
	}
	return s, nil
}

func osReleaseFrom(vars map[string]string) *OSRelease {
	r := &OSRelease{
		ID: vars["ID"], Name: vars["NAME"], PrettyName: vars["PRETTY_NAME"], VersionID: vars["VERSION_ID"],
		VersionCodename: vars["VERSION_CODENAME"], BuildID: vars["BUILD_ID"],
	}
	if r.ID == "" {
		r.ID = "linux" // os-release(5): "If not set, a default of ID=linux may be used."
	}
	r.IDLike = strings.Fields(vars["ID_LIKE"])
	return r
}

// OSRelease reads /etc/os-release, else /usr/lib/os-release (os-release(5)
// says to read the first that exists), from the first ext2/3/4 partition
// that has one.
func (d *Disk) OSRelease(ctx context.Context) (*OSRelease, error) {
	if len(d.ext) == 0 {
		return nil, fmt.Errorf("%s has no ext2/3/4 file system to read os-release from (partitions: %s)", d.Path, d.Describe())
	}
	for _, n := range d.ext {
		for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
			b, err := d.ReadFile(ctx, n, p)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			vars, err := ParseOSRelease(b)
			if err != nil {
				return nil, fmt.Errorf("%s of %s (partition %d): %w", p, d.Path, n, err)
			}
			r := osReleaseFrom(vars)
			r.Partition, r.Path = n, p
			return r, nil
		}
	}
	return nil, fmt.Errorf("no ext2/3/4 file system of %s has /etc/os-release or /usr/lib/os-release (partitions: %s)", d.Path, d.Describe())
}

// Distro is Glance's os_distro for the release: the libosinfo-derived
// vocabulary of Glance's "useful image properties" (arch, centos, debian,
// fedora, opensuse, rhel, rocky, sled, ubuntu ...), else the os-release ID.
func (r *OSRelease) Distro() string {
	switch r.ID {
	case "opensuse-leap", "opensuse-tumbleweed", "opensuse":
		return "opensuse"
	case "sles", "sled", "sles_sap":
		return "sled"
	case "almalinux":
		return "almalinux"
	}
	return strings.ToLower(r.ID)
}

// defaultUsers are the users distributions' cloud images give cloud-init
// as default_user (system_info in their cloud.cfg), by os-release ID.
var defaultUsers = map[string]string{
	"debian": "debian", "ubuntu": "ubuntu", "fedora": "fedora", "centos": "cloud-user", "rhel": "cloud-user",
	"rocky": "rocky", "almalinux": "almalinux", "opensuse-leap": "opensuse", "opensuse-tumbleweed": "opensuse",
	"arch": "arch", "alpine": "alpine", "amzn": "ec2-user",
}

// DefaultUser is the cloud image's default user for an os-release ID, ""
// when not known.
func DefaultUser(id string) string { return defaultUsers[id] }
