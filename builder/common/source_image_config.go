//go:generate go tool packer-sdc mapstructure-to-hcl2 -type SourceImageConfig
//go:generate go tool packer-sdc struct-markdown

package common

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// SourceImageConfig starts the build from an existing Windows disk instead
// of an install ISO, for example last month's golden image for this
// month's updates. There is no answer file and no Windows Setup: the disk
// boots and the build connects to WinRM with `winrm_username` and
// `winrm_password`, which must be the account's in that image.
type SourceImageConfig struct {
	// Path of a qcow2 disk with Windows installed, for example the
	// `<vm_name>.qcow2` of an earlier winbake build. It is never written:
	// the VM runs on a qcow2 overlay backed by it (or on a copy, see
	// `source_image_copy`), and the artifact is flattened into a
	// standalone qcow2 at the end. When a winbake manifest
	// (`<name>.json` next to the disk) describes it, its `firmware`, TPM
	// and Windows image are taken over, and its `efivars.fd` and `tpm/`
	// state are copied as the new VM's. Exactly one of `iso_url` and
	// `source_image` is required.
	SourceImage string `mapstructure:"source_image" required:"false"`
	// Checksum of `source_image`, `sha256:<hex>` (or the bare hex digest),
	// checked before the build uses it; `none` or unset skips the check.
	SourceImageChecksum string `mapstructure:"source_image_checksum" required:"false"`
	// Copy `source_image` in full (`qemu-img convert`) instead of running
	// on an overlay backed by it: slower, but the source may then change
	// or disappear while the build runs. Defaults to `false`.
	SourceImageCopy bool `mapstructure:"source_image_copy" required:"false"`

	manifest *SourceManifest
}

// SourceManifest is what winbake reads from the manifest of a source
// image (the artifact manifest written by winbake's builders).
type SourceManifest struct {
	// Path is the manifest file.
	Path       string `json:"-"`
	Disk       string `json:"disk"`
	SHA256     string `json:"sha256"`
	Firmware   string `json:"firmware"`
	EFIVars    string `json:"efivars"`
	SecureBoot bool   `json:"secure_boot"`
	TPM        bool   `json:"tpm"`
	TPMState   string `json:"tpm_state"`
	// ISOChecksum is the checksum of the install ISO the source was
	// built from; a build from this source carries it on.
	ISOChecksum string `json:"iso_checksum"`
	// WinRM is how the source's WinRM is reached; absent from images
	// built before winbake recorded it, which all have
	// winrmsec.LegacyBuildWinRM.
	WinRM   *winrmsec.BuildWinRM `json:"winrm"`
	Windows struct {
		ImageName        string `json:"image_name"`
		EditionID        string `json:"edition_id"`
		InstallationType string `json:"installation_type"`
		Version          string `json:"version"`
		Arch             string `json:"arch"`
	} `json:"windows"`
}

// BuildWinRM is how the source's WinRM is reached.
func (m *SourceManifest) BuildWinRM() winrmsec.BuildWinRM {
	if m == nil || m.WinRM == nil {
		return winrmsec.LegacyBuildWinRM
	}
	return *m.WinRM
}

// EFIVarsPath is the source's UEFI variable store, "" when it has none.
func (m *SourceManifest) EFIVarsPath() string {
	if m == nil || m.EFIVars == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(m.Path), m.EFIVars)
}

// TPMStatePath is the source's swtpm state directory, "" when it has none.
func (m *SourceManifest) TPMStatePath() string {
	if m == nil || !m.TPM || m.TPMState == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(m.Path), m.TPMState)
}

// Enabled reports whether the build starts from source_image.
func (c *SourceImageConfig) Enabled() bool { return c.SourceImage != "" }

// Manifest is the source image's manifest, nil when it has none (after
// Prepare).
func (c *SourceImageConfig) Manifest() *SourceManifest { return c.manifest }

// Prepare checks the source image and reads its manifest. It does nothing
// when source_image is unset.
func (c *SourceImageConfig) Prepare() []error {
	if c.SourceImage == "" {
		if c.SourceImageChecksum != "" || c.SourceImageCopy {
			return []error{fmt.Errorf("source_image_checksum: set without source_image; give source_image or remove source_image_checksum/source_image_copy")}
		}
		return nil
	}
	var errs []error
	abs, err := filepath.Abs(c.SourceImage)
	if err != nil {
		return []error{fmt.Errorf("source_image: %w", err)}
	}
	c.SourceImage = abs
	f, err := os.Open(abs)
	if err != nil {
		return []error{fmt.Errorf("source_image: %w; give the path of a qcow2 disk", err)}
	}
	magic := make([]byte, 4)
	_, err = f.Read(magic)
	f.Close()
	if err != nil || !bytes.Equal(magic, qemuvm.Qcow2Magic) {
		errs = append(errs, fmt.Errorf("source_image: %s is not a qcow2 image; convert it with qemu-img convert -O qcow2", abs))
	}
	if _, _, err := ParseSHA256Checksum(c.SourceImageChecksum); err != nil {
		errs = append(errs, fmt.Errorf("source_image_checksum: %w", err))
	}
	m, err := readSourceManifest(abs)
	if err != nil {
		errs = append(errs, fmt.Errorf("source_image: %w", err))
	}
	c.manifest = m
	return errs
}

// ParseSHA256Checksum parses "sha256:<hex>", a bare SHA-256 hex digest, or
// "none"/"" (check nothing: ok is false).
func ParseSHA256Checksum(s string) (digest string, ok bool, err error) {
	switch strings.ToLower(s) {
	case "", "none":
		return "", false, nil
	}
	d := strings.ToLower(strings.TrimPrefix(strings.ToLower(s), "sha256:"))
	if b, err := hex.DecodeString(d); err != nil || len(b) != 32 {
		return "", false, fmt.Errorf("%q is not a SHA-256 checksum; use \"sha256:<64 hex digits>\" or \"none\"", s)
	}
	return d, true, nil
}

// readSourceManifest reads <name>.json next to the disk when it describes
// that disk; nil without error when there is none.
func readSourceManifest(disk string) (*SourceManifest, error) {
	path := strings.TrimSuffix(disk, filepath.Ext(disk)) + ".json"
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m SourceManifest
	if err := json.Unmarshal(b, &m); err != nil || m.Disk != filepath.Base(disk) {
		// Some other JSON file; not a manifest of this disk.
		return nil, nil
	}
	m.Path = path
	if m.WinRM != nil {
		if err := m.WinRM.Check(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if p := m.EFIVarsPath(); p != "" && !steps.FileExists(p) {
		return nil, fmt.Errorf("the manifest %s lists %s, which is missing", path, p)
	}
	if p := m.TPMStatePath(); p != "" && !steps.FileExists(p) {
		return nil, fmt.Errorf("the manifest %s lists the TPM state %s, which is missing", path, p)
	}
	return &m, nil
}
