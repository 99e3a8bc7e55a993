package libvirt

import (
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Every mistake knowable before anything boots is refused at Prepare
// (`packer validate`), with one error that names the field and says what
// is accepted.
func TestOneMistakeIsRefusedAtValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]interface{}
		want []string
	}{
		{"local iso_url missing", map[string]interface{}{"iso_url": "testdata/no-such.iso"}, []string{"iso_url: testdata/no-such.iso does not exist"}},
		{"URL scheme", map[string]interface{}{"iso_url": "htps://example.com/win.iso"}, []string{`iso_url: "htps://example.com/win.iso" has the scheme "htps"`}},
		{"md5 of the wrong length", map[string]interface{}{"iso_checksum": "md5:" + strings.Repeat("0", 30)}, []string{"iso_checksum:", "a md5 checksum has 32 hex digits, this one 30"}},
		{"cpus = 0", map[string]interface{}{"cpus": 0}, []string{"cpus: 0 is out of range; use 1 to 64"}},
		{"efi_firmware_vars missing on a local hypervisor", map[string]interface{}{"efi_firmware_code": "testdata/win.iso", "efi_firmware_vars": "/nonexistent/OVMF_VARS.fd"},
			[]string{"efi_firmware_vars: /nonexistent/OVMF_VARS.fd is not a file on this machine"}},
		{"virtio_win_iso_checksum of the wrong length", map[string]interface{}{"virtio_win_iso_url": "https://example.com/virtio-win.iso", "virtio_win_iso_checksum": "sha256:abc"},
			[]string{"virtio_win_iso_checksum:", "a sha256 checksum has 64 hex digits, this one 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := testConfig()
			for k, v := range tc.set {
				raw[k] = v
			}
			var c Config
			_, err := c.Prepare(raw)
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

// The firmware paths of a remote hypervisor are its own: only libvirt can
// check them.
func TestRemoteFirmwarePathsAreNotCheckedHere(t *testing.T) {
	raw := testConfig()
	raw["libvirt_uri"] = "qemu+ssh://builder@virthost/system"
	raw["libvirt_network"] = "default"
	raw["efi_firmware_code"], raw["efi_firmware_vars"] = "/usr/share/edk2/x/OVMF_CODE.fd", "/usr/share/edk2/x/OVMF_VARS.fd"
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
}

func TestVirtioNetWithoutDriversWarns(t *testing.T) {
	var c Config
	warnings, err := c.Prepare(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), `net_device: "virtio-net" (the default) needs the NetKVM driver`) {
		t.Errorf("warnings %q lack the one about net_device", warnings)
	}
}
