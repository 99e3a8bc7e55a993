package common

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// downloadSchemes are the URL schemes Packer's download step (the SDK's
// StepDownload, through go-getter) fetches install media with.
var downloadSchemes = map[string]bool{"http": true, "https": true, "file": true, "smb": true, "s3": true, "gcs": true}

// CheckLocation checks a URL or local path of install media (iso_url,
// virtio_win_iso_url) before anything runs: a URL must be well formed with
// a scheme Packer downloads, a local path (or file:// URL) must name a
// file that exists. go-getter's forced-getter form (`git::...`) is left to
// the download.
func CheckLocation(field, loc string) error {
	if strings.Contains(loc, "::") && !strings.Contains(strings.SplitN(loc, "::", 2)[0], "/") {
		return nil
	}
	path := loc
	if i := strings.Index(loc, "://"); i >= 0 {
		u, err := url.Parse(loc)
		if err != nil {
			return fmt.Errorf("%s: %q is not a valid URL (%v); give an http(s) URL such as \"https://example.com/windows.iso\" or a local path", field, loc, err)
		}
		scheme := strings.ToLower(u.Scheme)
		if !downloadSchemes[scheme] {
			return fmt.Errorf("%s: %q has the scheme %q, which Packer does not download from; use http, https, file, smb, s3 or gcs, or a local path", field, loc, u.Scheme)
		}
		if scheme != "file" {
			if u.Host == "" {
				return fmt.Errorf("%s: %q names no host; give a URL such as \"https://example.com/windows.iso\"", field, loc)
			}
			return nil
		}
		path = u.Path
		if u.Host != "" && u.Host != "localhost" {
			// file://relative/path is go-getter's relative form.
			path = u.Host + u.Path
		}
	}
	if i := strings.IndexByte(path, '?'); i >= 0 && !strings.Contains(loc, "://") {
		// go-getter options such as ?archive=false.
		path = path[:i]
	}
	st, err := os.Stat(path)
	if err != nil {
		wd, _ := os.Getwd()
		return &missingFileError{fmt.Sprintf("%s: %s does not exist (a relative path is taken from the directory Packer runs in, %s); give the path of the file or a URL", field, path, wd)}
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %s is not a file; give the path of the ISO", field, path)
	}
	return nil
}

// PrepareISO runs the SDK's ISOConfig.Prepare after checking
// iso_checksum's form and length, which the SDK does not (it takes
// "md5:" with 31 digits), and iso_url/iso_urls: each mistake is one error.
func PrepareISO(iso *commonsteps.ISOConfig, ctx *interpolate.Context) (warnings []string, errs []error) {
	if err := CheckChecksum("iso_checksum", iso.ISOChecksum); err != nil {
		errs = append(errs, err)
		// The SDK would report the same checksum again.
		iso.ISOChecksum = "none"
		_, sdkErrs := iso.Prepare(ctx)
		errs = append(errs, sdkErrs...)
	} else {
		warnings, errs = iso.Prepare(ctx)
	}
	if len(errs) == 0 {
		errs = append(errs, CheckISOLocations(iso.ISOUrls)...)
	}
	return warnings, errs
}

// CheckISOLocations checks iso_url, or each of iso_urls (after the SDK's
// ISOConfig.Prepare, which puts iso_url first in ISOUrls).
// Packer tries iso_urls in order, so a missing local copy before a URL is
// no mistake: a missing file is refused only when no entry is usable.
func CheckISOLocations(urls []string) []error {
	var errs, missing []error
	usable := false
	for i, u := range urls {
		field := "iso_url"
		if len(urls) > 1 {
			field = fmt.Sprintf("iso_urls[%d]", i)
		}
		err := CheckLocation(field, u)
		switch {
		case err == nil:
			usable = true
		case errors.Is(err, errMissingFile):
			missing = append(missing, err)
		default:
			errs = append(errs, err)
		}
	}
	if !usable {
		errs = append(errs, missing...)
	}
	return errs
}

// errMissingFile marks CheckLocation's error for a local file that is not
// there.
var errMissingFile = errors.New("no such file")

type missingFileError struct{ msg string }

func (e *missingFileError) Error() string        { return e.msg }
func (e *missingFileError) Is(target error) bool { return target == errMissingFile }

var hexDigits = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// checksumDigits is the number of hex digits of each checksum type
// go-getter verifies (md5, sha1, sha256, sha512).
var checksumDigits = map[string]int{"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}

// CheckChecksum checks a checksum in Packer's iso_checksum forms: "none",
// "<type>:<hex>" whose length fits the type, bare hex of one of those
// lengths, or "file:<url>" (read by Packer's own check).
func CheckChecksum(field, value string) error {
	if value == "" || value == "none" {
		return nil
	}
	kind, digest, typed := strings.Cut(value, ":")
	if !typed {
		kind, digest = "", value
	}
	kind = strings.ToLower(kind)
	if kind == "file" {
		return nil
	}
	accepted := `use "sha256:<64 hex digits>" (or md5:, sha1:, sha512:), "file:<url of a checksum file>" or "none"`
	if !hexDigits.MatchString(digest) {
		return fmt.Errorf("%s: %q is not a checksum: %q is not hexadecimal; %s", field, value, digest, accepted)
	}
	if kind == "" {
		for _, n := range checksumDigits {
			if len(digest) == n {
				return nil
			}
		}
		return fmt.Errorf("%s: %q has %d hex digits, which is no checksum type's length (md5 32, sha1 40, sha256 64, sha512 128); %s", field, value, len(digest), accepted)
	}
	n, ok := checksumDigits[kind]
	if !ok {
		return fmt.Errorf("%s: %q: checksum type %q is not supported; %s", field, value, kind, accepted)
	}
	if len(digest) != n {
		return fmt.Errorf("%s: %q: a %s checksum has %d hex digits, this one %d; %s", field, value, kind, n, len(digest), accepted)
	}
	return nil
}

// DriverWarnings warns about virtio devices without the virtio-win ISO:
// Windows has no inbox driver for them, so Setup sees no disk, or
// Windows comes up without a network and WinRM is never reached, unless
// the install image carries the drivers.
func DriverWarnings(vm *qemuvm.VMConfig, media *MediaConfig) []string {
	if media.VirtioWinISOURL != "" {
		return nil
	}
	var warnings []string
	if vm.DiskInterface == qemuvm.DiskVirtioBlk || vm.DiskInterface == qemuvm.DiskVirtioSCSI {
		warnings = append(warnings, fmt.Sprintf("disk_interface: %q needs a virtio storage driver, but virtio_win_iso_url is unset: "+
			"unless the install image carries the driver, Windows Setup sees no disk; set virtio_win_iso_url or disk_interface = %q", vm.DiskInterface, qemuvm.DiskSATA))
	}
	if vm.NetDevice == qemuvm.NetVirtio {
		warnings = append(warnings, fmt.Sprintf("net_device: %q (the default) needs the NetKVM driver, but virtio_win_iso_url is unset: "+
			"unless the install image carries the driver, Windows has no network and WinRM is never reached; set virtio_win_iso_url or net_device = %q", qemuvm.NetVirtio, qemuvm.NetE1000))
	}
	return warnings
}
