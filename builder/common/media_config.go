//go:generate go tool packer-sdc mapstructure-to-hcl2 -type MediaConfig
//go:generate go tool packer-sdc struct-markdown

package common

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// Media that can carry the answer file.
const (
	UnattendMediaCD     = "cd"
	UnattendMediaFloppy = "floppy"
)

// UnattendFileName is the name Windows Setup looks for at the root of every
// removable drive.
const UnattendFileName = "autounattend.xml"

// DefaultCDLabel is the volume label of the CD that carries the answer file.
const DefaultCDLabel = "WINBAKE"

// isoLabelPattern is what ISO 9660 allows in a volume identifier (d-characters).
var isoLabelPattern = regexp.MustCompile(`^[A-Z0-9_]{1,32}$`)

// MediaConfig says how the generated answer file, and any files of yours,
// reach Windows Setup, and which virtio-win ISO provides the drivers.
//
// The answer file goes on a CD by default. A floppy works only on BIOS
// machines (UEFI firmware has no floppy controller), and is kept for
// templates that already rely on it.
type MediaConfig struct {
	commonsteps.CDConfig     `mapstructure:",squash"`
	commonsteps.FloppyConfig `mapstructure:",squash"`

	// Where `autounattend.xml` is written: `cd` (default) or `floppy`.
	// Files from `cd_files`/`cd_content` (or `floppy_files`/`floppy_content`)
	// go on the same medium. `floppy` requires `firmware = "bios"`.
	UnattendMedia string `mapstructure:"unattend_media" required:"false"`

	// URL or path of the virtio-win ISO (for example
	// `https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/archive-virtio/virtio-win-0.1.271-1/virtio-win-0.1.271.iso`),
	// attached as its own CD so Windows Setup can load the virtio storage and
	// network drivers. Leave empty when the VM uses devices Windows has
	// drivers for (SATA disk, e1000 network).
	VirtioWinISOURL string `mapstructure:"virtio_win_iso_url" required:"false"`

	// Checksum of the virtio-win ISO, in Packer's `iso_checksum` forms
	// (`sha256:<hex>`, `file:<url>`, or `none` to skip the check). Required
	// when `virtio_win_iso_url` is set.
	VirtioWinISOChecksum string `mapstructure:"virtio_win_iso_checksum" required:"false"`
}

// Prepare fills in defaults and validates the media settings for the
// given firmware ("bios" or "uefi").
func (c *MediaConfig) Prepare(ctx *interpolate.Context, firmware string) []error {
	var errs []error
	errs = append(errs, c.CDConfig.Prepare(ctx)...)
	errs = append(errs, c.FloppyConfig.Prepare(ctx)...)

	switch c.UnattendMedia {
	case "":
		c.UnattendMedia = UnattendMediaCD
	case UnattendMediaCD:
	case UnattendMediaFloppy:
		if firmware == qemuvm.FirmwareUEFI {
			errs = append(errs, fmt.Errorf(`unattend_media: "floppy" works only with firmware = "bios" (UEFI firmware has no floppy controller); use unattend_media = "cd"`))
		}
	default:
		errs = append(errs, fmt.Errorf("unattend_media: %q is not supported; use %q or %q", c.UnattendMedia, UnattendMediaCD, UnattendMediaFloppy))
	}

	if c.CDLabel == "" {
		c.CDLabel = DefaultCDLabel
	} else if !isoLabelPattern.MatchString(c.CDLabel) {
		errs = append(errs, fmt.Errorf("cd_label: %q is not a valid ISO 9660 volume label; use 1 to 32 characters from A-Z, 0-9 and _", c.CDLabel))
	}

	if c.UnattendMedia == UnattendMediaCD {
		errs = append(errs, noUserUnattend("cd_files", c.CDFiles, "cd_content", c.CDContent)...)
	} else {
		errs = append(errs, noUserUnattend("floppy_files", c.FloppyFiles, "floppy_content", c.FloppyContent)...)
	}

	if c.VirtioWinISOURL != "" && c.VirtioWinISOChecksum == "" {
		errs = append(errs, fmt.Errorf(`virtio_win_iso_checksum: required with virtio_win_iso_url; give "sha256:<hex>", "file:<url of a checksum file>", or "none" to skip the check`))
	}
	if c.VirtioWinISOURL == "" && c.VirtioWinISOChecksum != "" {
		errs = append(errs, fmt.Errorf("virtio_win_iso_checksum: set without virtio_win_iso_url; give the ISO's URL or path in virtio_win_iso_url"))
	}
	if c.VirtioWinISOURL != "" {
		if err := CheckLocation("virtio_win_iso_url", c.VirtioWinISOURL); err != nil {
			errs = append(errs, err)
		}
	}
	if err := CheckChecksum("virtio_win_iso_checksum", c.VirtioWinISOChecksum); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// noUserUnattend rejects a user-supplied autounattend.xml on the medium
// that carries the generated one: two files of that name cannot both win.
func noUserUnattend(filesField string, files []string, contentField string, content map[string]string) []error {
	var errs []error
	for _, f := range files {
		if strings.EqualFold(filepath.Base(f), UnattendFileName) {
			errs = append(errs, fmt.Errorf("%s: %q would replace the generated %s; use unattend_template to supply your own answer file", filesField, f, UnattendFileName))
		}
	}
	for name := range content {
		if strings.EqualFold(filepath.Base(name), UnattendFileName) {
			errs = append(errs, fmt.Errorf("%s: %q would replace the generated %s; use unattend_template to supply your own answer file", contentField, name, UnattendFileName))
		}
	}
	return errs
}
