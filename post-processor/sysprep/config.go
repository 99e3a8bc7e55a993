//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,CloudbaseInitConfig
//go:generate go tool packer-sdc struct-markdown

package sysprep

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/mitchellh/mapstructure"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/fetch"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-sysprep"

// DefaultRemoveAppxPackages are the per-user Appx packages known to make
// sysprep fail with "installed for a user, but not provisioned for all
// users": OneDrive sync on Windows 11 and Edge Game Assist on Server 2022.
var DefaultRemoveAppxPackages = []string{"Microsoft.OneDriveSync", "Microsoft.Edge.GameAssist"}

// Config holds the settings of the winbake-sysprep post-processor.
type Config struct {
	common.PackerConfig  `mapstructure:",squash"`
	qemuvm.ImageVMConfig `mapstructure:",squash"`

	// Account WinRM logs on with: the build account of the golden image.
	// Defaults to `Administrator`, the account winbake-qemu sets up unless
	// its `winrm_username` says otherwise.
	WinRMUsername string `mapstructure:"winrm_username" required:"false"`
	// Password of `winrm_username`: the `winrm_password` the golden image
	// was built with. winbake-qemu generates one when none is set, so set
	// it in the builder (from a sensitive variable) and pass the same
	// value here. It is never logged.
	WinRMPassword string `mapstructure:"winrm_password" required:"true"`
	// How long to wait for WinRM after the VM starts. Defaults to `30m`.
	WinRMTimeout time.Duration `mapstructure:"winrm_timeout" required:"false"`
	// How long sysprep may take, from its start until the VM has powered
	// off. When it passes, QEMU is killed and nothing is kept. Defaults to
	// `30m`.
	Timeout time.Duration `mapstructure:"timeout" required:"false"`

	// Directory that receives the generalized disk, its manifest, a copy
	// of `efivars.fd` and of the TPM state, and the serial console log.
	// Defaults to the input artifact's directory with `-sysprep` appended;
	// it must not exist unless Packer runs with `-force`. It must not be
	// the input's directory.
	OutputDir string `mapstructure:"output_directory" required:"false"`
	// Name of the output disk (`<vm_name>.qcow2`) and manifest
	// (`<vm_name>.json`). Defaults to the input disk's name.
	VMName string `mapstructure:"vm_name" required:"false"`

	// Path of the OVMF code file for a UEFI image. Defaults to the file
	// the build booted (the manifest's `efi_firmware_code`) while it
	// exists on this machine, else to the firmware winbake-qemu finds the
	// same way (QEMU's firmware descriptors, then Debian's
	// `/usr/share/OVMF/OVMF_CODE_4M.fd`; the Secure Boot build for an
	// image whose manifest says `secure_boot`); the variable store is the
	// image's own `efivars.fd`, copied.
	EFIFirmwareCode string `mapstructure:"efi_firmware_code" required:"false"`

	// Per-user Appx packages removed (for all users) before sysprep, by
	// package name: a first pass. Packages that sysprep itself names in
	// setupact.log as installed for a user but not provisioned are removed
	// after a failed run whether or not they are listed here, and sysprep
	// runs again. Defaults to the packages known to block sysprep:
	// `["Microsoft.OneDriveSync", "Microsoft.Edge.GameAssist"]`. Set `[]`
	// to remove none before sysprep. The build log names each package
	// removed.
	RemoveAppxPackages []string `mapstructure:"remove_appx_packages" required:"false"`
	// Skip `Optimize-Volume -ReTrim` of drive C: before sysprep. The trim
	// hands the free space back to the qcow2 disk (it is attached with
	// discard=unmap), so the image is smaller. Defaults to `false`.
	SkipTrim bool `mapstructure:"skip_trim" required:"false"`
	// Installs and configures cloudbase-init before sysprep; sysprep then
	// uses cloudbase-init's `Unattend.xml`. Without it, winbake generates
	// the answer file sysprep runs with.
	CloudbaseInit *CloudbaseInitConfig `mapstructure:"cloudbase_init" required:"false"`

	// Keep the input artifact (the golden image) after this post-processor
	// has run; Packer reads `keep_input_artifact` on the post-processor
	// block itself. The golden image of winbake-qemu or winbake-libvirt is
	// kept by default, as the next build starts from it; set `false` to let
	// Packer discard it. The golden image is never modified either way.
	KeepInputArtifact bool `mapstructure:"keep_input_artifact" required:"false"`

	ctx interpolate.Context
}

// CloudbaseInitConfig installs cloudbase-init from its MSI and writes
// its `cloudbase-init.conf` and `cloudbase-init-unattend.conf` (both
// ending in the `[DEFAULT]` section, where MAAS's curtin hook appends its
// metadata settings). winbake turns off the deprecated config drive
// switches (`config_drive_cdrom`, `config_drive_vfat`,
// `config_drive_raw_hhd`), which could only add to the search, so that
// `config_drive_types` and `config_drive_locations` decide it: by default
// cloudbase-init looks for a `config-2` config drive of either type (ISO
// 9660, vfat) in every location (CD-ROM, raw disk, partition); restrict
// it with `options`, e.g. `config_drive_locations = "cdrom"`.
type CloudbaseInitConfig struct {
	// The cloudbase-init MSI: a path on the machine that runs Packer, e.g.
	// `CloudbaseInitSetup_Stable_x64.msi`, or an `http(s)://` URL, e.g.
	// `https://cloudbase.it/downloads/CloudbaseInitSetup_Stable_x64.msi`,
	// downloaded once into Packer's cache (`PACKER_CACHE_DIR`) and reused
	// while its checksum matches. It is copied into the guest over WinRM (a
	// 40 MB MSI takes a few minutes) and installed with
	// `msiexec /i ... /qn LOGGINGSERIALPORTNAME=COM1`, so cloudbase-init
	// logs to the first serial port.
	MSI string `mapstructure:"msi" required:"true"`
	// SHA-256 of the MSI, `sha256:<64 hex digits>`. Required when `msi` is
	// a URL (Cloudbase publishes the MSI without a checksum: pin the one you
	// tested); with a path, the file is checked against it when set.
	MSIChecksum string `mapstructure:"msi_checksum" required:"false"`
	// Metadata services cloudbase-init tries, in order, as Python class
	// paths, e.g.
	// `["cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
	// "cloudbaseinit.metadata.services.httpservice.HttpService"]`.
	// Defaults to cloudbase-init's own list (HttpService,
	// ConfigDriveService, EC2Service, MaaSHttpService, CloudStack,
	// OpenNebulaService).
	MetadataServices []string `mapstructure:"metadata_services" required:"false"`
	// Plugins cloudbase-init runs, in order, as Python class paths.
	// Defaults to cloudbase-init's own list (its conf/default.py).
	Plugins []string `mapstructure:"plugins" required:"false"`
	// Local account cloudbase-init creates or updates on the instance.
	// Defaults to `Admin`.
	Username string `mapstructure:"username" required:"false"`
	// Local groups of `username`. Defaults to `["Administrators"]`.
	Groups []string `mapstructure:"groups" required:"false"`
	// Whether cloudbase-init makes `username` change its password at the
	// first logon: `no`, `clear_text_injected_only` (when the password is
	// the metadata's `admin_pass`) or `always`. Defaults to `no`, so the
	// password the cloud injects (Nova's `admin_pass`) or cloudbase-init
	// generates and posts stays valid and network logons (WinRM, and
	// `winbake-verify`) work with it. cloudbase-init's own default is
	// `clear_text_injected_only`: Windows then refuses every network
	// logon with an injected password until someone changes it in an
	// interactive logon (console or RDP).
	FirstLogonBehaviour string `mapstructure:"first_logon_behaviour" required:"false"`
	// More `[DEFAULT]` options written to both `cloudbase-init.conf` and
	// `cloudbase-init-unattend.conf`, e.g. `{ mtu_use_dhcp_config = "true",
	// config_drive_locations = "cdrom" }`.
	Options map[string]string `mapstructure:"options" required:"false"`
}

var classPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
var optionName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Prepare decodes raws into c, fills in defaults and validates the result.
// Every error names the HCL field and what is accepted.
func (c *Config) Prepare(raws ...interface{}) error {
	var md mapstructure.Metadata
	err := config.Decode(c, &config.DecodeOpts{
		Metadata:           &md,
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(es ...error) { errs = packersdk.MultiErrorAppend(errs, es...) }

	if c.WinRMUsername == "" {
		c.WinRMUsername = "Administrator"
	}
	if c.WinRMPassword == "" {
		add(fmt.Errorf("winrm_password: required; give the winrm_password the golden image was built with"))
	} else {
		packersdk.LogSecretFilter.Set(c.WinRMPassword)
	}
	if c.WinRMTimeout == 0 {
		c.WinRMTimeout = 30 * time.Minute
	} else if c.WinRMTimeout < 0 {
		add(fmt.Errorf("winrm_timeout: %s is negative; use a duration such as \"30m\"", c.WinRMTimeout))
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Minute
	} else if c.Timeout < 0 {
		add(fmt.Errorf("timeout: %s is negative; use a duration such as \"30m\"", c.Timeout))
	}
	if c.VMName != "" && (strings.ContainsAny(c.VMName, `/\`) || c.VMName == "." || c.VMName == "..") {
		add(fmt.Errorf("vm_name: %q must be a file name without a directory", c.VMName))
	}
	if c.RemoveAppxPackages == nil {
		c.RemoveAppxPackages = append([]string(nil), DefaultRemoveAppxPackages...)
	}
	for _, p := range c.RemoveAppxPackages {
		if !appxName.MatchString(p) {
			add(fmt.Errorf("remove_appx_packages: %q is not an Appx package name; use names such as \"Microsoft.OneDriveSync\" (letters, digits, dots, hyphens)", p))
		}
	}
	add(c.ImageVMConfig.Prepare(&c.ctx, md.Keys)...)
	if c.EFIFirmwareCode != "" {
		if _, err := os.Stat(c.EFIFirmwareCode); err != nil {
			add(fmt.Errorf("efi_firmware_code: %v", err))
		}
	}
	if ci := c.CloudbaseInit; ci != nil {
		add(ci.prepare()...)
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// prepareMSI checks msi and msi_checksum: a URL needs a checksum, a local
// file must be an .msi and match the checksum when one is given.
func (ci *CloudbaseInitConfig) prepareMSI() []error {
	if ci.MSIChecksum != "" {
		if err := fetch.CheckSHA256("cloudbase_init.msi_checksum", ci.MSIChecksum); err != nil {
			return []error{err}
		}
	}
	switch {
	case ci.MSI == "":
		return []error{fmt.Errorf("cloudbase_init.msi: required; give the path of CloudbaseInitSetup_Stable_x64.msi (or another cloudbase-init MSI) on this machine, or its https:// URL with msi_checksum")}
	case fetch.IsURL(ci.MSI):
		u, err := url.Parse(ci.MSI)
		if err != nil || u.Host == "" {
			return []error{fmt.Errorf("cloudbase_init.msi: %q is not a valid URL", ci.MSI)}
		}
		if !strings.EqualFold(path.Ext(u.Path), ".msi") {
			return []error{fmt.Errorf("cloudbase_init.msi: %s does not name an .msi file", ci.MSI)}
		}
		if ci.MSIChecksum == "" {
			return []error{fmt.Errorf("cloudbase_init.msi_checksum: required with an msi URL; give \"sha256:\" and the 64 hex digits of the MSI you tested")}
		}
		return nil
	}
	fi, err := os.Stat(ci.MSI)
	switch {
	case err != nil:
		return []error{fmt.Errorf("cloudbase_init.msi: %v", err)}
	case !fi.Mode().IsRegular() || !strings.EqualFold(filepath.Ext(ci.MSI), ".msi"):
		return []error{fmt.Errorf("cloudbase_init.msi: %s is not an .msi file", ci.MSI)}
	case ci.MSIChecksum != "":
		got, _, err := diskcheck.FileSHA256(context.Background(), ci.MSI)
		if err != nil {
			return []error{fmt.Errorf("cloudbase_init.msi: %v", err)}
		}
		if want := strings.ToLower(strings.TrimPrefix(ci.MSIChecksum, "sha256:")); got != want {
			return []error{fmt.Errorf("cloudbase_init.msi_checksum: %s has SHA-256 %s, not %s", ci.MSI, got, want)}
		}
	}
	return nil
}

var appxName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.\-]*$`)

func (ci *CloudbaseInitConfig) prepare() []error {
	var errs []error
	errs = append(errs, ci.prepareMSI()...)
	for _, s := range ci.MetadataServices {
		if !classPath.MatchString(s) {
			errs = append(errs, fmt.Errorf("cloudbase_init.metadata_services: %q is not a Python class path such as \"cloudbaseinit.metadata.services.configdrive.ConfigDriveService\"", s))
		}
	}
	for _, s := range ci.Plugins {
		if !classPath.MatchString(s) {
			errs = append(errs, fmt.Errorf("cloudbase_init.plugins: %q is not a Python class path such as \"cloudbaseinit.plugins.common.userdata.UserDataPlugin\"", s))
		}
	}
	if ci.Username == "" {
		ci.Username = "Admin"
	} else if strings.ContainsAny(ci.Username, "\r\n\"/\\[]:;|=,+*?<>") {
		errs = append(errs, fmt.Errorf("cloudbase_init.username: %q contains a character Windows account names cannot hold", ci.Username))
	}
	if ci.Groups == nil {
		ci.Groups = []string{"Administrators"}
	}
	for _, g := range ci.Groups {
		if g == "" || strings.ContainsAny(g, "\r\n,") {
			errs = append(errs, fmt.Errorf("cloudbase_init.groups: %q is not a group name (no commas or line breaks)", g))
		}
	}
	switch ci.FirstLogonBehaviour {
	case "":
		ci.FirstLogonBehaviour = "no"
	case "no", "clear_text_injected_only", "always":
	default:
		errs = append(errs, fmt.Errorf("cloudbase_init.first_logon_behaviour: %q is not supported; use \"no\", \"clear_text_injected_only\" or \"always\"", ci.FirstLogonBehaviour))
	}
	for k, v := range ci.Options {
		if !optionName.MatchString(k) {
			errs = append(errs, fmt.Errorf("cloudbase_init.options: %q is not a cloudbase-init option name (lower case letters, digits, underscores)", k))
		}
		if strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fmt.Errorf("cloudbase_init.options: the value of %q spans lines; give one line", k))
		}
		switch k {
		case "metadata_services", "plugins", "username", "groups", "first_logon_behaviour", "logging_serial_port_settings":
			errs = append(errs, fmt.Errorf("cloudbase_init.options: %q is set by its own field or by winbake; remove it from options", k))
		}
	}
	return errs
}
