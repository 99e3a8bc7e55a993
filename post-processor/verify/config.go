//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,CheckConfig
//go:generate go tool packer-sdc struct-markdown

package verify

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/mitchellh/mapstructure"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-verify"

// Modes: the cloud whose first boot is reproduced.
const (
	ModeOpenStack = "openstack"
	ModeMAAS      = "maas"
)

// Operating systems (os_type).
const (
	OSWindows = "windows"
	OSLinux   = "linux"
)

// Config holds the settings of the winbake-verify post-processor.
type Config struct {
	common.PackerConfig  `mapstructure:",squash"`
	qemuvm.ImageVMConfig `mapstructure:",squash"`

	// `openstack` (default): the instance gets a ConfigDrive v2 and/or the
	// OpenStack metadata API, as Nova gives it. `maas`: the MAAS metadata
	// endpoints cloudbase-init's MAASHttpService reads.
	Mode string `mapstructure:"mode" required:"false"`
	// Attach a ConfigDrive v2 (ISO 9660, label `config-2`) in `openstack`
	// mode, mastered with `xorriso` (needed on PATH) as Nova masters it
	// with genisoimage. Defaults to `true`.
	ConfigDrive *bool `mapstructure:"config_drive" required:"false"`
	// Serve the metadata API host-side (OpenStack's in `openstack` mode,
	// MAAS's in `maas` mode). The instance's user network is then
	// 169.254.169.0/24 and the guest reaches the service at
	// `http://169.254.169.254/`, cloudbase-init's default
	// `metadata_base_url`, as on a cloud. Defaults to `true` in `maas`
	// mode and `false` in `openstack` mode.
	MetadataService *bool `mapstructure:"metadata_service" required:"false"`

	// Hostname the metadata gives the instance; the check compares it with
	// the computer name. Defaults to `winbake-verify`. At most 15
	// characters (a NetBIOS name) of letters, digits and hyphens.
	Hostname string `mapstructure:"hostname" required:"false"`
	// Account cloudbase-init creates (its `username` option). Defaults to
	// `Admin`.
	Username string `mapstructure:"username" required:"false"`
	// Password the metadata gives the account as `admin_pass`; WinRM logs
	// on with it (the image's cloudbase-init must then keep it valid:
	// `first_logon_behaviour = "no"`, winbake-sysprep's default). Defaults
	// to a random password generated for this run. It is never logged.
	AdminPassword string `mapstructure:"admin_password" required:"false"`
	// Put `admin_pass` into the metadata. Defaults to `true`. Without it
	// cloudbase-init generates a password and posts it encrypted to the
	// metadata service, and WinRM logs on with that password (decrypted
	// with the instance's key), which needs `metadata_service`: the way
	// to verify an image whose cloudbase-init `first_logon_behaviour` is
	// `clear_text_injected_only`, which makes an injected password
	// unusable for network logons.
	InjectAdminPassword *bool `mapstructure:"inject_admin_password" required:"false"`
	// Expect cloudbase-init to post the admin password encrypted with the
	// instance's SSH public key to the metadata service (OpenStack
	// `/openstack/latest/password`), and decrypt it with the private key
	// as `nova get-password` does. Needs `metadata_service`. Defaults to
	// `false`.
	CheckPasswordPost bool `mapstructure:"check_password_post" required:"false"`

	// The image offers WinRM to its users, over HTTPS: when `true` a TLS
	// listener must answer on port 5986 (with cloudbase-init, its
	// ConfigWinRMListenerPlugin makes it at the first boot, with the
	// certificate whose thumbprint it logs on COM1), when `false` none
	// may. Either way WinRM over HTTP must refuse Basic and unencrypted
	// messages, as Windows' defaults do, and the build's certificate and
	// firewall rules must be gone. The checks that read the guest log on
	// with NTLM and encrypted messages on the HTTP listener, which
	// Windows' defaults keep. Defaults to the image's documented final
	// state: `true` when winbake-sysprep's manifest says cloudbase-init
	// creates the HTTPS listener (`image_winrm.https_at_first_boot`),
	// `false` when it says it does not, `true` for images made before
	// winbake-sysprep recorded it.
	KeepWinRM *bool `mapstructure:"keep_winrm" required:"false"`
	// Passwords that must not remain in the image: the build's
	// `winrm_password`. The check fails when an answer file
	// (`C:\Windows\Panther\unattend.xml`, `C:\Windows\Panther\Unattend\`,
	// `C:\Windows\System32\Sysprep\unattend.xml`, `C:\unattend.xml`)
	// still exists or holds one, or when automatic logon is on. Never
	// logged.
	BuildPasswords []string `mapstructure:"build_passwords" required:"false"`
	// Skip the check that every package of
	// `C:\ProgramData\winbake\updates.json` is installed. Defaults to
	// `false`; an image without the file passes it.
	SkipUpdatesCheck bool `mapstructure:"skip_updates_check" required:"false"`
	// More checks: each runs a command over WinRM and looks for a string
	// in its output.
	Checks []CheckConfig `mapstructure:"check" required:"false"`

	// How long WinRM may take to accept `username` once the first boot
	// has finished. Defaults to `5m`.
	WinRMTimeout time.Duration `mapstructure:"winrm_timeout" required:"false"`
	// How long the first boot may take until cloudbase-init has finished
	// and WinRM answers. Defaults to `30m`.
	Timeout time.Duration `mapstructure:"timeout" required:"false"`
	// Where the report (`<name>.verify.json`, `<name>.verify.txt`) is
	// written. Defaults to the input artifact's directory.
	ReportDirectory string `mapstructure:"report_directory" required:"false"`

	// `windows` or `linux`. Defaults to `windows` when the input carries a
	// winbake manifest (winbake-sysprep's artifact, or winbake-compress's
	// after it), else `linux`: any qcow2 or raw disk, from any builder,
	// booted with cloud-init's config drive and checked over SSH with the
	// instance's key.
	OSType string `mapstructure:"os_type" required:"false"`
	// Linux: the disk image to boot when the input artifact has several
	// files. Defaults to the artifact's one qcow2 or raw disk.
	ImageFile string `mapstructure:"image_file" required:"false"`
	// Linux: the image's default user, to whom cloud-init gives the
	// instance's SSH key. Defaults to the name distributions use for the
	// image's `/etc/os-release` `ID`: `debian`, `ubuntu`, `fedora`,
	// `rocky`, `almalinux`, `cloud-user` (CentOS, RHEL), `opensuse`... It
	// is required when the image's os-release cannot be read.
	SSHUsername string `mapstructure:"ssh_username" required:"false"`
	// Linux: how long SSH may take to accept the key once cloud-init has
	// finished. Defaults to `5m`.
	SSHTimeout time.Duration `mapstructure:"ssh_timeout" required:"false"`
	// Linux: the firmware the image boots with, `bios` (default, as Nova
	// without `hw_firmware_type`) or `uefi` (OVMF with fresh variables).
	// Windows images boot with the firmware of their manifest.
	Firmware string `mapstructure:"firmware" required:"false"`
	// Linux: QEMU machine type. Defaults to `pc`, Nova's default, whose
	// IDE CD every kernel reads (on `q35` the config drive is a SATA CD,
	// and kernels without AHCI, such as Debian's cloud kernel, do not see
	// it).
	MachineType string `mapstructure:"machine_type" required:"false"`
	// Linux: `virtio-blk` (default), `virtio-scsi` or `sata`.
	DiskInterface string `mapstructure:"disk_interface" required:"false"`
	// Linux: size in MiB of the instance's root disk, as a flavor gives it.
	// Defaults to the image's virtual size plus 1024 MiB, so that the
	// check that cloud-init grew the root file system can tell.
	DiskSizeMB int `mapstructure:"disk_size" required:"false"`

	// Path of the OVMF code file for a UEFI image, as in winbake-sysprep.
	EFIFirmwareCode string `mapstructure:"efi_firmware_code" required:"false"`

	ctx interpolate.Context
}

// CheckConfig is a user check: a command and the text its output must
// contain.
type CheckConfig struct {
	// Name in the report. Defaults to the command.
	Name string `mapstructure:"name" required:"false"`
	// Command run with cmd.exe over WinRM, e.g.
	// `powershell -NoProfile -Command (Get-Service sshd).Status`.
	Command string `mapstructure:"command" required:"true"`
	// Text the output (stdout and stderr) must contain, e.g. `Running`.
	Contains string `mapstructure:"contains" required:"true"`
}

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,13}[A-Za-z0-9])?$`)

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// Prepare decodes raws into c, fills in defaults and validates the result.
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

	switch c.Mode {
	case "":
		c.Mode = ModeOpenStack
	case ModeOpenStack, ModeMAAS:
	default:
		add(fmt.Errorf("mode: %q is not supported; use \"openstack\" or \"maas\"", c.Mode))
	}
	if c.ConfigDrive == nil {
		v := c.Mode == ModeOpenStack
		c.ConfigDrive = &v
	} else if *c.ConfigDrive && c.Mode == ModeMAAS {
		add(fmt.Errorf("config_drive: MAAS gives no config drive; set mode = \"openstack\" or leave config_drive out"))
	}
	if *c.ConfigDrive && c.Mode == ModeOpenStack {
		if _, err := exec.LookPath(ConfigDriveTool); err != nil {
			add(fmt.Errorf("config_drive: writing the config drive needs %s on PATH (Debian/Ubuntu package xorriso); install it, or set config_drive = false and metadata_service = true", ConfigDriveTool))
		}
	}
	if c.MetadataService == nil {
		v := c.Mode == ModeMAAS
		c.MetadataService = &v
	}
	if !*c.ConfigDrive && !*c.MetadataService {
		add(fmt.Errorf("config_drive, metadata_service: both are false; the instance would get no metadata, enable at least one"))
	}
	if c.CheckPasswordPost && !*c.MetadataService {
		add(fmt.Errorf("check_password_post: the password is posted to the metadata service; set metadata_service = true"))
	}
	if c.InjectAdminPassword != nil && !*c.InjectAdminPassword && (c.KeepWinRM == nil || *c.KeepWinRM) {
		// WinRM then logs on with the password cloudbase-init posts.
		switch {
		case c.Mode == ModeMAAS:
			add(fmt.Errorf("inject_admin_password: false leaves WinRM only the password cloudbase-init posts, and MAAS takes none; set keep_winrm = false"))
		case !*c.MetadataService:
			add(fmt.Errorf("inject_admin_password: false leaves WinRM only the password cloudbase-init posts to the metadata service; set metadata_service = true, or keep_winrm = false"))
		}
	}
	switch c.OSType {
	case "", OSWindows, OSLinux:
	default:
		add(fmt.Errorf("os_type: %q is not supported; use %q or %q", c.OSType, OSWindows, OSLinux))
	}
	if c.OSType == OSLinux && c.Mode == ModeMAAS {
		add(fmt.Errorf("mode: Linux images are verified in \"openstack\" mode (cloud-init's ConfigDrive datasource); MAAS deploys Linux with curtin, not from a cloud-init config drive"))
	}
	if c.OSType == OSLinux && !*c.ConfigDrive {
		add(fmt.Errorf("config_drive: a Linux image reads its metadata from the config drive here: cloud-init looks for the metadata service only where the DMI says OpenStack, which QEMU does not; set config_drive = true"))
	}
	if c.OSType == OSWindows && (c.SSHUsername != "" || c.ImageFile != "" || c.Firmware != "" || c.DiskSizeMB != 0) {
		add(fmt.Errorf("ssh_username, image_file, firmware, disk_size: Linux settings with os_type = \"windows\"; a Windows image boots as its winbake manifest says"))
	}
	if c.SSHTimeout == 0 {
		c.SSHTimeout = 5 * time.Minute
	} else if c.SSHTimeout < 0 {
		add(fmt.Errorf("ssh_timeout: %s is negative; use a duration such as \"5m\"", c.SSHTimeout))
	}
	switch c.Firmware {
	case "", qemuvm.FirmwareBIOS, qemuvm.FirmwareUEFI:
	default:
		add(fmt.Errorf("firmware: %q is not supported; use %q or %q", c.Firmware, qemuvm.FirmwareBIOS, qemuvm.FirmwareUEFI))
	}
	switch c.DiskInterface {
	case "", qemuvm.DiskVirtioBlk, qemuvm.DiskVirtioSCSI, qemuvm.DiskSATA:
	default:
		add(fmt.Errorf("disk_interface: %q is not supported; use %q, %q or %q", c.DiskInterface, qemuvm.DiskVirtioBlk, qemuvm.DiskVirtioSCSI, qemuvm.DiskSATA))
	}
	if c.DiskSizeMB < 0 {
		add(fmt.Errorf("disk_size: %d is negative; give MiB, or leave it out for the image's size plus 1024", c.DiskSizeMB))
	}
	if c.ImageFile != "" {
		if _, err := os.Stat(c.ImageFile); err != nil {
			add(fmt.Errorf("image_file: %v", err))
		}
	}
	if c.Hostname == "" {
		c.Hostname = "winbake-verify"
	} else if !hostnamePattern.MatchString(c.Hostname) {
		add(fmt.Errorf("hostname: %q is not a Windows computer name; use 1 to 15 letters, digits and hyphens, not starting or ending with a hyphen", c.Hostname))
	}
	if c.Username == "" {
		c.Username = "Admin"
	} else if strings.ContainsAny(c.Username, "\r\n\"/\\[]:;|=,+*?<>") {
		add(fmt.Errorf("username: %q contains a character Windows account names cannot hold", c.Username))
	}
	if c.InjectAdminPassword == nil {
		v := true
		c.InjectAdminPassword = &v
	}
	if c.AdminPassword == "" {
		c.AdminPassword = randomPassword()
	}
	packersdk.LogSecretFilter.Set(c.AdminPassword)
	for _, p := range c.BuildPasswords {
		if p == "" {
			add(fmt.Errorf("build_passwords: an empty password; give the winrm_password the image was built with"))
			continue
		}
		packersdk.LogSecretFilter.Set(p)
	}
	for i, ch := range c.Checks {
		if ch.Command == "" {
			add(fmt.Errorf("check[%d].command: required; give the command to run over WinRM", i))
		}
		if ch.Contains == "" {
			add(fmt.Errorf("check[%d].contains: required; give the text the command's output must contain", i))
		}
		if ch.Name == "" {
			c.Checks[i].Name = ch.Command
		}
	}
	if c.WinRMTimeout == 0 {
		c.WinRMTimeout = 5 * time.Minute
	} else if c.WinRMTimeout < 0 {
		add(fmt.Errorf("winrm_timeout: %s is negative; use a duration such as \"5m\"", c.WinRMTimeout))
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Minute
	} else if c.Timeout < 0 {
		add(fmt.Errorf("timeout: %s is negative; use a duration such as \"30m\"", c.Timeout))
	}
	add(c.ImageVMConfig.Prepare(&c.ctx, md.Keys)...)
	if c.EFIFirmwareCode != "" {
		if _, err := os.Stat(c.EFIFirmwareCode); err != nil {
			add(fmt.Errorf("efi_firmware_code: %v", err))
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
