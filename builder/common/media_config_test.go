package common

import (
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

func TestMediaConfigDefaults(t *testing.T) {
	var c MediaConfig
	if errs := c.Prepare(&interpolate.Context{}, qemuvm.FirmwareUEFI); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if c.UnattendMedia != UnattendMediaCD {
		t.Errorf("unattend_media default = %q, want %q", c.UnattendMedia, UnattendMediaCD)
	}
	if c.CDLabel != DefaultCDLabel {
		t.Errorf("cd_label default = %q, want %q", c.CDLabel, DefaultCDLabel)
	}
}

func TestMediaConfigAcceptsFloppyOnBIOS(t *testing.T) {
	c := MediaConfig{UnattendMedia: UnattendMediaFloppy}
	if errs := c.Prepare(&interpolate.Context{}, qemuvm.FirmwareBIOS); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
}

func TestMediaConfigRejects(t *testing.T) {
	cases := []struct {
		name     string
		config   MediaConfig
		firmware string
		field    string
		accepted string
	}{
		{"floppy with UEFI", MediaConfig{UnattendMedia: "floppy"}, qemuvm.FirmwareUEFI, "unattend_media:", `use unattend_media = "cd"`},
		{"unknown medium", MediaConfig{UnattendMedia: "usb"}, qemuvm.FirmwareBIOS, "unattend_media:", `use "cd" or "floppy"`},
		{"lower-case label", MediaConfig{CDConfig: commonsteps.CDConfig{CDLabel: "winbake"}}, qemuvm.FirmwareBIOS, "cd_label:", "A-Z, 0-9 and _"},
		{"label too long", MediaConfig{CDConfig: commonsteps.CDConfig{CDLabel: strings.Repeat("A", 33)}}, qemuvm.FirmwareBIOS, "cd_label:", "1 to 32 characters"},
		{"own answer file in cd_content", MediaConfig{CDConfig: commonsteps.CDConfig{CDContent: map[string]string{"Autounattend.xml": "<x/>"}}}, qemuvm.FirmwareBIOS, "cd_content:", "unattend_template"},
		{"own answer file in floppy_content", MediaConfig{UnattendMedia: "floppy", FloppyConfig: commonsteps.FloppyConfig{FloppyContent: map[string]string{"autounattend.xml": "<x/>"}}}, qemuvm.FirmwareBIOS, "floppy_content:", "unattend_template"},
		{"virtio URL without checksum", MediaConfig{VirtioWinISOURL: "testdata/virtio-win.iso"}, qemuvm.FirmwareUEFI, "virtio_win_iso_checksum:", `"none"`},
		{"virtio checksum without URL", MediaConfig{VirtioWinISOChecksum: "none"}, qemuvm.FirmwareUEFI, "virtio_win_iso_checksum:", "virtio_win_iso_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.config.Prepare(&interpolate.Context{}, tc.firmware)
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			msg := errs[0].Error()
			if !strings.HasPrefix(msg, tc.field) || !strings.Contains(msg, tc.accepted) {
				t.Fatalf("error %q should start with %q and say %q", msg, tc.field, tc.accepted)
			}
		})
	}
}
