package qemu

import (
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// oneMistake prepares testConfig() with one setting changed, as
// `packer validate` does, and returns the errors and winbake's warnings
// (not the SDK's about iso_checksum = "none").
func oneMistake(t *testing.T, key string, value interface{}) ([]error, []string) {
	t.Helper()
	raw := testConfig()
	raw[key] = value
	var c Config
	warnings, err := c.Prepare(raw)
	var own []string
	for _, w := range warnings {
		if !strings.Contains(w, "checksum of 'none'") {
			own = append(own, w)
		}
	}
	warnings = own
	if err == nil {
		return nil, warnings
	}
	if m, ok := err.(*packersdk.MultiError); ok {
		return m.Errors, warnings
	}
	return []error{err}, warnings
}

// Every mistake knowable before anything boots is refused at Prepare
// (`packer validate`), with one error that names the field and says what
// is accepted.
func TestOneMistakeIsRefusedAtValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   string
		value interface{}
		want  []string // in the one error
	}{
		{"local iso_url missing", "iso_url", "testdata/no-such.iso", []string{"iso_url: testdata/no-such.iso does not exist", "give the path of the file or a URL"}},
		{"file:// iso_url missing", "iso_url", "file:///nonexistent/win.iso", []string{"iso_url: /nonexistent/win.iso does not exist"}},
		{"URL scheme", "iso_url", "htps://example.com/win.iso", []string{`iso_url: "htps://example.com/win.iso" has the scheme "htps"`, "use http, https"}},
		{"URL without host", "iso_url", "https:///win.iso", []string{`iso_url: "https:///win.iso" names no host`}},
		{"URL that does not parse", "iso_url", "https://example.com/%zz.iso", []string{`iso_url: "https://example.com/%zz.iso" is not a valid URL`}},
		{"md5 of the wrong length", "iso_checksum", "md5:" + strings.Repeat("a", 31), []string{"iso_checksum:", "a md5 checksum has 32 hex digits, this one 31", `"sha256:<64 hex digits>"`}},
		{"sha256 of the wrong length", "iso_checksum", "sha256:" + strings.Repeat("a", 63), []string{"iso_checksum:", "a sha256 checksum has 64 hex digits, this one 63"}},
		{"checksum not hex", "iso_checksum", "sha256:" + strings.Repeat("z", 64), []string{"iso_checksum:", "is not hexadecimal"}},
		{"efi_firmware_code missing", "efi_firmware_code", "/nonexistent/OVMF_CODE.fd", []string{"efi_firmware_code: /nonexistent/OVMF_CODE.fd is not a file on this machine"}},
		{"cpus = 0", "cpus", 0, []string{"cpus: 0 is out of range; use 1 to 64"}},
		{"memory = 0", "memory", 0, []string{"memory: 0 MiB is out of range; use 512 to 1048576"}},
		{"disk_size = 0", "disk_size", 0, []string{"disk_size: 0 MiB"}},
		{"virtio_win_iso_url missing", "virtio_win_iso_url", "testdata/virtio-win-0.1.271.iso", []string{"virtio_win_iso_url: testdata/virtio-win-0.1.271.iso does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, value := tc.key, tc.value
			raw := map[string]interface{}{key: value}
			if key == "efi_firmware_code" {
				raw["efi_firmware_vars"] = "testdata/win.iso" // a file that exists
			}
			if key == "virtio_win_iso_url" {
				raw["virtio_win_iso_checksum"] = "none"
			}
			base := testConfig()
			for k, v := range raw {
				base[k] = v
			}
			var c Config
			_, err := c.Prepare(base)
			var errs []error
			if m, ok := err.(*packersdk.MultiError); ok {
				errs = m.Errors
			} else if err != nil {
				errs = []error{err}
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error %q lacks %q", errs[0], w)
				}
			}
		})
	}
}

// virtio devices without the virtio-win ISO are a warning: whether the
// install image carries the drivers is known only to the guest.
func TestVirtioWithoutDriversWarns(t *testing.T) {
	errs, warnings := oneMistake(t, "disk_interface", "sata")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `net_device: "virtio-net" (the default) needs the NetKVM driver`) {
		t.Errorf("warnings %q, want the one about net_device", warnings)
	}
	errs, warnings = oneMistake(t, "net_device", "e1000")
	if len(errs) != 0 || len(warnings) != 1 || !strings.HasPrefix(warnings[0], "disk_interface:") {
		t.Errorf("net_device e1000: errors %v, warnings %q; want the disk_interface warning only", errs, warnings)
	}
	if errs, warnings := oneMistake(t, "virtio_win_iso_url", "testdata/win.iso"); len(errs) != 1 || len(warnings) != 0 {
		t.Errorf("with virtio_win_iso_url (and no checksum): warnings %q, errors %v; want only the checksum error", warnings, errs)
	}
}
