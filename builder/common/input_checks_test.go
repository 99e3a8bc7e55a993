package common

import (
	"strings"
	"testing"
)

// Packer tries iso_urls in order: a missing local copy ahead of a URL is
// fine, a list of missing files is not, and a malformed URL never is.
func TestCheckISOLocations(t *testing.T) {
	for _, tc := range []struct {
		urls []string
		want []string // one per error
	}{
		{[]string{"testdata/virtio-win.iso"}, nil},
		{[]string{"testdata/virtio-win.iso?archive=false"}, nil},
		{[]string{"cache/win.iso", "https://example.com/win.iso"}, nil},
		{[]string{"cache/win.iso", "other/win.iso"}, []string{"iso_urls[0]: cache/win.iso does not exist", "iso_urls[1]: other/win.iso does not exist"}},
		{[]string{"cache/win.iso", "https//example.com/win.iso"}, []string{"iso_urls[0]: cache/win.iso", "iso_urls[1]: https//example.com/win.iso does not exist"}},
		{[]string{"testdata/virtio-win.iso", "ftp://example.com/win.iso"}, []string{`iso_urls[1]: "ftp://example.com/win.iso" has the scheme "ftp"`}},
		{[]string{"git::https://example.com/isos.git//win.iso"}, nil},
	} {
		errs := CheckISOLocations(tc.urls)
		if len(errs) != len(tc.want) {
			t.Errorf("%q: errors %v, want %d", tc.urls, errs, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(errs[i].Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.urls, errs[i], w)
			}
		}
	}
}

func TestCheckChecksum(t *testing.T) {
	for _, ok := range []string{"", "none", "file:https://example.com/SHA256SUMS", "md5:" + strings.Repeat("a", 32),
		"sha1:" + strings.Repeat("a", 40), "SHA256:" + strings.Repeat("A", 64), "sha512:" + strings.Repeat("0", 128), strings.Repeat("0", 64)} {
		if err := CheckChecksum("iso_checksum", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"md5:" + strings.Repeat("a", 31):    "a md5 checksum has 32 hex digits, this one 31",
		"sha256:" + strings.Repeat("a", 65): "a sha256 checksum has 64 hex digits, this one 65",
		"crc32:deadbeef":                    `checksum type "crc32" is not supported`,
		strings.Repeat("a", 50):             "has 50 hex digits, which is no checksum type's length",
		"sha1:" + strings.Repeat("g", 40):   "is not hexadecimal",
	} {
		if err := CheckChecksum("iso_checksum", bad); err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "iso_checksum: ") {
			t.Errorf("%q: error %v, want %q", bad, err, want)
		}
	}
}
