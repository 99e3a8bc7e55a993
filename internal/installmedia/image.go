package installmedia

import (
	"fmt"
	"strings"
)

// Version is the Windows version recorded for an image
// (<WINDOWS><VERSION> in the WIM XML).
type Version struct {
	Major, Minor, Build, SPBuild int
}

// String formats the version as Windows does: "10.0.20348.587".
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d.%d", v.Major, v.Minor, v.Build, v.SPBuild)
}

// Image describes one Windows image (edition) of an install.wim or
// install.esd, as recorded in the WIM's XML metadata.
type Image struct {
	// Index is the 1-based image index (DISM's /Index, unattend's
	// /IMAGE/INDEX).
	Index int
	// Name is the image name (unattend's /IMAGE/NAME), for example
	// "Windows Server 2022 SERVERDATACENTER" or "Windows 11 Pro".
	Name               string
	Description        string
	DisplayName        string
	DisplayDescription string
	// Flags is the <FLAGS> element, usually the edition ID.
	Flags       string
	ProductName string
	// EditionID is for example "ServerDatacenterCore" or "Professional".
	EditionID string
	// InstallationType is "Client", "Server" or "Server Core" (or
	// "WindowsPE" for boot images).
	InstallationType string
	// ProductType is "WinNT" for clients, "ServerNT" (or "LanmanNT")
	// for servers.
	ProductType string
	// Arch is the processor architecture: "x86", "arm", "ia64", "amd64",
	// "arm64", "" when the image does not record one, or "unknown(N)" for
	// a code this package does not know.
	Arch string
	// Languages lists the image's languages ("en-US", ...) in recorded
	// order; DefaultLanguage is the one marked <DEFAULT>.
	Languages       []string
	DefaultLanguage string
	Version         Version
}

// archNames maps the <ARCH> codes (PROCESSOR_ARCHITECTURE_* values) to
// names.
var archNames = map[int]string{
	0:  "x86",
	5:  "arm",
	6:  "ia64",
	9:  "amd64",
	12: "arm64",
}

func archName(code int) string {
	if name, ok := archNames[code]; ok {
		return name
	}
	return fmt.Sprintf("unknown(%d)", code)
}

// IsServer reports whether the image is a Windows Server edition. It uses
// INSTALLATIONTYPE ("Server", "Server Core") and, when that is missing,
// PRODUCTTYPE ("ServerNT", "LanmanNT").
func (img Image) IsServer() bool {
	if img.InstallationType != "" {
		return strings.HasPrefix(strings.ToLower(img.InstallationType), "server")
	}
	switch strings.ToLower(img.ProductType) {
	case "servernt", "lanmannt":
		return true
	}
	return false
}

// isClient reports whether the image is a client (desktop) edition.
func (img Image) isClient() bool {
	if img.InstallationType != "" {
		return strings.EqualFold(img.InstallationType, "Client")
	}
	return strings.EqualFold(img.ProductType, "WinNT")
}

// release is one row of the build map shared by VirtioDriverFolder and
// OSVersion. Rows are sorted by minBuild; a row covers builds from its
// minBuild up to the next row's minBuild, so builds between two releases
// (insider and semi-annual channel builds) map to the older release.
type release struct {
	minBuild  int
	folder    string // virtio-win driver folder
	osVersion string // Glance os_version
	name      string
}

var serverReleases = []release{
	{14393, "2k16", "2016", "Windows Server 2016"},
	{17763, "2k19", "2019", "Windows Server 2019"},
	{20348, "2k22", "2022", "Windows Server 2022"},
	{26100, "2k25", "2025", "Windows Server 2025"},
}

var clientReleases = []release{
	{10240, "w10", "10", "Windows 10"},
	{22000, "w11", "11", "Windows 11"},
}

// release finds the image's row in the build map.
func (img Image) release() (release, error) {
	var table []release
	switch {
	case img.IsServer():
		table = serverReleases
	case img.isClient():
		table = clientReleases
	default:
		return release{}, fmt.Errorf("image %q has installation type %q (product type %q), which is neither a Windows client nor a Windows Server", img.Name, img.InstallationType, img.ProductType)
	}
	if img.Version.Build == 0 {
		return release{}, fmt.Errorf("image %q records no Windows build number", img.Name)
	}
	if img.Version.Major != 10 || img.Version.Build < table[0].minBuild {
		return release{}, fmt.Errorf("image %q is Windows %s (build %d), older than %s (build %d); virtio-win has no driver folder for it", img.Name, img.Version, img.Version.Build, table[0].name, table[0].minBuild)
	}
	r := table[0]
	for _, row := range table[1:] {
		if img.Version.Build >= row.minBuild {
			r = row
		}
	}
	return r, nil
}

// VirtioDriverFolder returns the virtio-win driver folder for the image's
// Windows release (for example viostor/<folder>/amd64): "2k16" (Server
// builds 14393–17762), "2k19" (17763–20347), "2k22" (20348–26099), "2k25"
// (26100 and later), "w10" (client builds 10240–21999) or "w11" (22000 and
// later). Older builds and images that are neither client nor server give
// an error naming the image and build.
func (img Image) VirtioDriverFolder() (string, error) {
	r, err := img.release()
	if err != nil {
		return "", err
	}
	return r.folder, nil
}

// VirtioArchFolder returns the virtio-win architecture folder for the
// image: "amd64", "ARM64" or "x86"; "" for architectures virtio-win has no
// drivers for.
func (img Image) VirtioArchFolder() string {
	switch img.Arch {
	case "amd64":
		return "amd64"
	case "arm64":
		return "ARM64"
	case "x86":
		return "x86"
	}
	return ""
}

// VirtioDriverPath returns "<release folder>/<arch folder>", for example
// "2k22/amd64", the path below each virtio-win driver's directory
// (viostor/2k22/amd64).
func (img Image) VirtioDriverPath() (string, error) {
	folder, err := img.VirtioDriverFolder()
	if err != nil {
		return "", err
	}
	arch := img.VirtioArchFolder()
	if arch == "" {
		return "", fmt.Errorf("image %q has architecture %q; virtio-win has drivers for amd64, arm64 and x86 only", img.Name, img.Arch)
	}
	return folder + "/" + arch, nil
}

// OSVersion returns the Glance os_version for the image (with os_distro
// "windows"): "2016", "2019", "2022" or "2025" for servers, "10" or "11"
// for clients, following the same build map as VirtioDriverFolder; "" when
// the image maps to no known release.
func (img Image) OSVersion() string {
	r, err := img.release()
	if err != nil {
		return ""
	}
	return r.osVersion
}

// FindImage returns the image called name. where names the media in the
// error message, for example the ISO's path.
//
// Microsoft documents /IMAGE/NAME matching without saying whether case
// matters, so FindImage first looks for an exact match and then for a single
// case-insensitive one. Callers should write the returned image's Name (the
// spelling recorded in the WIM) into the answer file rather than the user's
// spelling. When nothing matches, the error lists the available names,
// quoted and in index order:
//
//	image_name "X" is not in <where>: available images are "A", "B"
func FindImage(images []Image, name, where string) (Image, error) {
	for _, img := range images {
		if img.Name == name {
			return img, nil
		}
	}
	var folded []Image
	for _, img := range images {
		if strings.EqualFold(img.Name, name) {
			folded = append(folded, img)
		}
	}
	if len(folded) == 1 {
		return folded[0], nil
	}
	if len(folded) > 1 {
		return Image{}, fmt.Errorf("image_name %q matches several images in %s when case is ignored: %s; spell it exactly", name, where, strings.Join(namesOf(folded), ", "))
	}
	if len(images) == 0 {
		return Image{}, fmt.Errorf("image_name %q is not in %s: it holds no images", name, where)
	}
	return Image{}, fmt.Errorf("image_name %q is not in %s: available images are %s", name, where, strings.Join(namesOf(images), ", "))
}

func namesOf(images []Image) []string {
	names := make([]string, len(images))
	for i, img := range images {
		names[i] = fmt.Sprintf("%q", img.Name)
	}
	return names
}
