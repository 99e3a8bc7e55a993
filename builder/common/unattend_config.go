//go:generate go tool packer-sdc mapstructure-to-hcl2 -type UnattendConfig
//go:generate go tool packer-sdc struct-markdown

package common

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// UnattendConfig describes the Windows answer file (`autounattend.xml`) that
// winbake generates to install Windows without interaction: which image to
// install, languages, time zone, disk layout, virtio drivers for Windows PE,
// Remote Desktop and ping, and the WinRM setup Packer connects through.
//
// The build account is the communicator's `winrm_username` (default
// `Administrator`) with `winrm_password`; when no password is given, a
// random one is generated for the build and hidden from Packer's logs.
// WinRM is enabled by the last first-logon commands, after
// `unattend_extra_commands`, so Packer does not connect before the machine
// is ready. A guest reached through the port forward on 127.0.0.1 (QEMU's
// user network) gets WinRM over HTTP on port 5985 with Basic
// authentication and unencrypted messages, which never leave the host,
// unless `winrm_use_ssl` is set. Any other guest (a bridge, a libvirt
// network, a remote hypervisor) gets WinRM over HTTPS on port 5986 with a
// key and certificate made for the build and carried on the answer medium
// (`winrm.pfx`, encrypted with a password in the answer file); the
// communicator trusts that certificate and no other, so `winrm_insecure`
// has no effect. winbake-sysprep returns WinRM to Windows' defaults before
// it generalizes the image.
type UnattendConfig struct {
	// The Windows edition to install, by its image name in the installation
	// media's `sources/install.wim` (or `install.esd`), exactly as
	// `wimlib-imagex info` or `dism /Get-WimInfo` lists it, for example
	// `"Windows Server 2022 SERVERDATACENTER"`,
	// `"Windows Server 2022 SERVERSTANDARDCORE"` or `"Windows 11 Pro"`.
	// Names are used instead of indexes because indexes differ between
	// media.
	ImageName string `mapstructure:"image_name" required:"true"`
	// Product key typed into Setup: five groups of five characters such as
	// `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`. Leave empty for evaluation media and
	// media that need no key. The key is hidden from Packer's logs.
	ProductKey string `mapstructure:"product_key" required:"false"`
	// Language of Setup and of Windows, for example `en-US` (default) or
	// `de-DE`. The language must be present on the installation media.
	UILanguage string `mapstructure:"ui_language" required:"false"`
	// Keyboard layouts: language tags (`de-DE`) or keyboard identifiers
	// (`0407:00000407`), several separated by `;`. Defaults to `ui_language`.
	InputLocale string `mapstructure:"input_locale" required:"false"`
	// Language for non-Unicode programs, for example `en-US`. Defaults to
	// `ui_language`.
	SystemLocale string `mapstructure:"system_locale" required:"false"`
	// Formats for dates, numbers and currency, for example `en-GB`. Defaults
	// to `ui_language`.
	UserLocale string `mapstructure:"user_locale" required:"false"`
	// Windows time zone ID as listed by `tzutil /l`, for example `UTC`
	// (default), `Pacific Standard Time` or `W. Europe Standard Time`. IANA
	// names such as `Europe/Berlin` are not accepted.
	TimeZone string `mapstructure:"time_zone" required:"false"`
	// Computer name: `*` (default) lets Windows pick a random name;
	// otherwise 1 to 15 letters, digits and hyphens, not only digits.
	// cloudbase-init usually renames the machine when the image is deployed.
	ComputerName string `mapstructure:"computer_name" required:"false"`
	// Allow Remote Desktop connections and open the "Remote Desktop"
	// firewall group. Defaults to `true`.
	EnableRDP config.Trilean `mapstructure:"enable_rdp" required:"false"`
	// Require Network Level Authentication for Remote Desktop. Defaults to
	// `true`; only used when `enable_rdp` is true.
	RDPRequireNLA config.Trilean `mapstructure:"rdp_require_nla" required:"false"`
	// Add firewall rules that answer ICMP echo requests (ping), IPv4 and
	// IPv6. Defaults to `true`.
	AllowICMP config.Trilean `mapstructure:"allow_icmp" required:"false"`
	// Let Windows 11 Setup install without TPM 2.0, Secure Boot or 4 GB of
	// RAM (the `LabConfig` registry values `BypassTPMCheck`,
	// `BypassSecureBootCheck` and `BypassRAMCheck`). Defaults to `false`;
	// prefer a virtual TPM and Secure Boot firmware. Server editions need
	// neither.
	BypassHardwareChecks bool `mapstructure:"bypass_hardware_checks" required:"false"`
	// Size in MB of a Windows Recovery Environment partition, `0` (default)
	// for none. Only with `firmware = "uefi"`; accepted sizes are 300 to
	// 10240. The partition is placed before the Windows partition so that
	// Windows stays last and can be extended to fill a larger disk at
	// deployment.
	RecoveryPartitionSize int `mapstructure:"recovery_partition_size" required:"false"`
	// Drive letters at which Windows PE looks for the virtio-win drivers
	// (`<letter>:\viostor\<os>\<arch>`, `vioscsi`, `NetKVM`). CD-ROM letters
	// in Windows PE depend on the order of the devices, so several are
	// tried. Defaults to `["D", "E", "F", "G", "H"]`; `X` is Windows PE's
	// own drive. Only used when a virtio-win ISO is attached.
	VirtioDriverDrives []string `mapstructure:"virtio_driver_drives" required:"false"`
	// Path to your own answer file, written as a Go
	// [text/template](https://pkg.go.dev/text/template). It receives the
	// same settings as the generated file (`{{ .ImageName }}`,
	// `{{ .Password }}`, `{{ .FirstLogonCommands }}`, ...) and the functions
	// `xml` (escape text), `adminPassword`/`userPassword` (encode passwords
	// for `PlainText` false), `component "<name>"` (the component
	// attributes) and `pass "windowsPE"`/`"specialize"`/`"oobeSystem"`
	// (winbake's default settings for that pass). The template must parse
	// when the configuration is prepared, and its output must be well-formed
	// XML with the `<unattend xmlns="urn:schemas-microsoft-com:unattend">`
	// root. Packer's own `{{ }}` variables are not expanded in the file.
	UnattendTemplate string `mapstructure:"unattend_template" required:"false"`
	// Commands run at the first logon of the build account, in order,
	// before WinRM is enabled, for example
	// `["cmd.exe /c mkdir C:\\build"]`. Each is one command line of at most
	// 1024 characters; use `cmd.exe /c` for shell built-ins.
	UnattendExtraCommands []string `mapstructure:"unattend_extra_commands" required:"false"`

	// Set by Prepare, PrepareCredentials and PrepareWinRMTransport.
	unattendTemplate *unattend.Template
	buildUsername    string
	buildPassword    string
	winrmHTTPS       bool
	winrmNTLM        bool
	// winrm is set on the copy StepCreateUnattendMedia renders.
	winrm unattend.WinRMSettings
}

// Prepare fills in defaults and validates the answer-file settings for the
// given firmware ("bios" or "uefi"; the builder validates the firmware
// itself) and disk size in MiB (0 when unknown, which skips the disk-size
// check). Every error names the HCL field and says what is accepted.
//
// The disk must hold the partition layout with a Windows partition of at
// least 32768 MiB (Microsoft's 32 GB minimum for Windows Server): 32770 MiB
// for BIOS, 32886 MiB for UEFI, plus the recovery partition. Windows 11
// itself asks for 64 GB.
//
// ctx is accepted for symmetry with the SDK's Prepare methods; the fields
// are interpolated when the builder decodes its configuration, and the
// template file is never interpolated by Packer.
func (c *UnattendConfig) Prepare(ctx *interpolate.Context, firmware string, diskSizeMB uint64) []error {
	_ = ctx
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Defaults.
	c.ProductKey = strings.ToUpper(strings.TrimSpace(c.ProductKey))
	if c.ProductKey != "" {
		packersdk.LogSecretFilter.Set(c.ProductKey)
	}
	if c.UILanguage == "" {
		c.UILanguage = unattend.DefaultLanguage
	}
	uiErr := unattend.ValidateLanguageTag(unattend.FieldUILanguage, c.UILanguage)
	add(uiErr)
	// Locales that inherit a bad ui_language are not reported again.
	for _, l := range []struct {
		value *string
		check func(string) error
	}{
		{&c.InputLocale, unattend.ValidateInputLocale},
		{&c.SystemLocale, func(v string) error { return unattend.ValidateLanguageTag(unattend.FieldSystemLocale, v) }},
		{&c.UserLocale, func(v string) error { return unattend.ValidateLanguageTag(unattend.FieldUserLocale, v) }},
	} {
		if *l.value == "" {
			*l.value = c.UILanguage
			if uiErr != nil {
				continue
			}
		}
		add(l.check(*l.value))
	}
	if c.TimeZone == "" {
		c.TimeZone = unattend.DefaultTimeZone
	}
	if c.ComputerName == "" {
		c.ComputerName = unattend.DefaultComputerName
	}
	if c.EnableRDP == config.TriUnset {
		c.EnableRDP = config.TriTrue
	}
	if c.RDPRequireNLA == config.TriUnset {
		c.RDPRequireNLA = config.TriTrue
	}
	if c.AllowICMP == config.TriUnset {
		c.AllowICMP = config.TriTrue
	}
	if len(c.VirtioDriverDrives) == 0 {
		c.VirtioDriverDrives = append([]string(nil), unattend.DefaultVirtioDrives...)
	}
	for i, d := range c.VirtioDriverDrives {
		// Accept "d" and "D:" for "D".
		c.VirtioDriverDrives[i] = strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(d), ":"))
	}

	// Validation.
	add(unattend.ValidateImageName(c.ImageName))
	add(unattend.ValidateProductKey(c.ProductKey))
	add(unattend.ValidateTimeZone(c.TimeZone))
	add(unattend.ValidateComputerName(c.ComputerName))
	add(unattend.ValidateDriveLetters(c.VirtioDriverDrives))
	for i, cmd := range c.UnattendExtraCommands {
		add(unattend.ValidateCommand(i, cmd))
	}

	fw := unattend.Firmware(firmware)
	fwOK := unattend.ValidateFirmware(firmware) == nil
	recovery := c.RecoveryPartitionSize
	if fwOK || recovery < 0 {
		if err := unattend.ValidateRecoveryPartition(fw, recovery); err != nil {
			add(err)
			recovery = 0 // size the disk check without the rejected partition
		}
	}
	if fwOK && diskSizeMB > 0 {
		layout := unattend.LayoutFor(fw, recovery)
		if need := layout.MinimumDiskMB(); diskSizeMB < need {
			add(&unattend.FieldError{Field: unattend.FieldDiskSize, Msg: fmt.Sprintf(
				"%d MiB is too small for Windows with the %s partition layout: at least %d MiB are needed "+
					"(%s, a Windows partition of at least %d MiB (Microsoft's 32 GB minimum), and %d MiB for partition tables)",
				diskSizeMB, firmware, need, describeFixedPartitions(layout), unattend.MinWindowsPartitionMB, unattend.PartitionTableOverheadMB)})
		}
	}

	c.unattendTemplate = nil
	if c.UnattendTemplate != "" {
		t, err := loadUnattendTemplate(c.UnattendTemplate)
		add(err)
		c.unattendTemplate = t
	}
	return errs
}

func describeFixedPartitions(l unattend.Layout) string {
	var parts []string
	for _, p := range l.Partitions {
		if p.SizeMB == 0 {
			continue
		}
		name := p.Type
		if p.Label == "Recovery" {
			name = "recovery"
		}
		parts = append(parts, fmt.Sprintf("%s %d MiB", name, p.SizeMB))
	}
	if len(parts) == 0 {
		return "no fixed-size partitions"
	}
	return strings.Join(parts, ", ")
}

func loadUnattendTemplate(path string) (*unattend.Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return nil, &unattend.FieldError{Field: unattend.FieldTemplate, Msg: fmt.Sprintf(
			"cannot read %q: %v; give the path of a Go text/template file that renders %s", path, err, UnattendFileName)}
	}
	t, err := unattend.ParseTemplate(path, string(b))
	if err != nil {
		return nil, &unattend.FieldError{Field: unattend.FieldTemplate, Msg: fmt.Sprintf(
			"%q is not a valid Go text/template: %v", path, err)}
	}
	return t, nil
}

// Characters of generated build passwords. The symbols are ones that need no
// quoting in cmd.exe, PowerShell, URLs or XML, so the password can be pasted
// into scripts.
const (
	passwordUpper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	passwordLower   = "abcdefghijkmnopqrstuvwxyz"
	passwordDigits  = "23456789"
	passwordSymbols = "-_.+@#~"
	// GeneratedPasswordLength is the length of generated build passwords.
	GeneratedPasswordLength = 24
	maxWinRMPasswordLength  = 127
)

// GenerateBuildPassword returns a random password of
// GeneratedPasswordLength characters from crypto/rand with at least one
// upper-case letter, lower-case letter, digit and symbol, so it meets the
// Windows complexity policy.
func GenerateBuildPassword() (string, error) {
	alphabet := passwordUpper + passwordLower + passwordDigits + passwordSymbols
	max := big.NewInt(int64(len(alphabet)))
	for {
		b := make([]byte, GeneratedPasswordLength)
		for i := range b {
			n, err := rand.Int(rand.Reader, max)
			if err != nil {
				return "", fmt.Errorf("generating the build password: %w", err)
			}
			b[i] = alphabet[n.Int64()]
		}
		pw := string(b)
		// Rejection sampling keeps the distribution uniform over all
		// passwords that contain every class.
		if strings.ContainsAny(pw, passwordUpper) && strings.ContainsAny(pw, passwordLower) &&
			strings.ContainsAny(pw, passwordDigits) && strings.ContainsAny(pw, passwordSymbols) {
			return pw, nil
		}
	}
}

// PrepareCredentials sets up the build account from the communicator's WinRM
// settings: winrm_username defaults to Administrator; an empty
// winrm_password is replaced by a generated one (GenerateBuildPassword) and
// written back to comm, so the builder's WinRM connection uses it. The
// password is always registered with Packer's log secret filter. A given
// password must consist of printable ASCII characters (WinRM Basic
// authentication cannot carry others reliably), at most 127 of them.
func (c *UnattendConfig) PrepareCredentials(comm *communicator.Config) []error {
	var errs []error
	if comm.WinRMUser == "" {
		comm.WinRMUser = unattend.DefaultUsername
	}
	if err := unattend.ValidateUsername(comm.WinRMUser); err != nil {
		errs = append(errs, err)
	}
	if comm.WinRMPassword == "" {
		pw, err := GenerateBuildPassword()
		if err != nil {
			return append(errs, err)
		}
		comm.WinRMPassword = pw
	} else if err := validateWinRMPassword(comm.WinRMPassword); err != nil {
		errs = append(errs, err)
	}
	packersdk.LogSecretFilter.Set(comm.WinRMPassword)

	c.buildUsername, c.buildPassword = comm.WinRMUser, comm.WinRMPassword
	return errs
}

func validateWinRMPassword(pw string) error {
	for i := 0; i < len(pw); i++ {
		if pw[i] < 0x20 || pw[i] > 0x7E {
			return &unattend.FieldError{Field: unattend.FieldPassword, Msg: fmt.Sprintf(
				"contains a character that is not printable ASCII at byte %d: WinRM Basic authentication and the answer file "+
					"accept printable ASCII (letters, digits, space and !\"#$%%&'()*+,-./:;<=>?@[\\]^_`{|}~) only; "+
					"leave winrm_password unset to have a strong password generated", i)}
		}
	}
	if len(pw) > maxWinRMPasswordLength {
		return &unattend.FieldError{Field: unattend.FieldPassword, Msg: fmt.Sprintf(
			"is %d characters long: at most %d are accepted", len(pw), maxWinRMPasswordLength)}
	}
	return nil
}

// Settings returns the answer-file settings for the given firmware ("bios"
// or "uefi") and installation media: virtioFolder is the virtio-win
// operating-system folder ("2k22", "w11", ...; empty when no virtio drivers
// are needed), archFolder the virtio-win architecture folder ("amd64",
// "ARM64", "x86"; empty derives it from arch) and arch the image's processor
// architecture ("amd64", "arm64", "x86"). Call Prepare and
// PrepareCredentials first.
func (c *UnattendConfig) Settings(firmware, virtioFolder, archFolder, arch string) unattend.Settings {
	return unattend.Settings{
		Architecture:         arch,
		Firmware:             unattend.Firmware(firmware),
		ImageName:            c.ImageName,
		ProductKey:           c.ProductKey,
		UILanguage:           c.UILanguage,
		InputLocale:          c.InputLocale,
		SystemLocale:         c.SystemLocale,
		UserLocale:           c.UserLocale,
		TimeZone:             c.TimeZone,
		ComputerName:         c.ComputerName,
		EnableRDP:            c.EnableRDP.True(),
		RDPRequireNLA:        c.RDPRequireNLA.True(),
		AllowICMP:            c.AllowICMP.True(),
		BypassHardwareChecks: c.BypassHardwareChecks,
		RecoveryPartitionMB:  c.RecoveryPartitionSize,
		VirtioFolder:         virtioFolder,
		VirtioArchFolder:     archFolder,
		VirtioDrives:         append([]string(nil), c.VirtioDriverDrives...),
		Username:             c.buildUsername,
		Password:             c.buildPassword,
		ExtraCommands:        append([]string(nil), c.UnattendExtraCommands...),
		WinRM:                c.winrm,
	}
}

// Render returns autounattend.xml for the given firmware and installation
// media (see Settings): the user's unattend_template when set, otherwise the
// generated answer file. Template execution errors carry the template's path
// and line.
func (c *UnattendConfig) Render(firmware, virtioFolder, archFolder, arch string) ([]byte, error) {
	s := c.Settings(firmware, virtioFolder, archFolder, arch)
	if c.UnattendTemplate == "" {
		out, err := unattend.Render(s)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", UnattendFileName, err)
		}
		return out, nil
	}
	t := c.unattendTemplate
	if t == nil {
		var err error
		if t, err = loadUnattendTemplate(c.UnattendTemplate); err != nil {
			return nil, err
		}
		c.unattendTemplate = t
	}
	out, err := t.Execute(s)
	if err != nil {
		return nil, fmt.Errorf("%s: rendering %q: %w", unattend.FieldTemplate, c.UnattendTemplate, err)
	}
	return out, nil
}
