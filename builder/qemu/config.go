//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool packer-sdc struct-markdown

package qemu

import (
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/mitchellh/mapstructure"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-qemu"

// Config holds the settings of the winbake-qemu builder: the install ISO,
// the answer file (UnattendConfig, MediaConfig), the virtual hardware
// (VMConfig), WinRM, and a few QEMU-specific settings.
type Config struct {
	common.PackerConfig        `mapstructure:",squash"`
	commonsteps.ISOConfig      `mapstructure:",squash"`
	wbcommon.UnattendConfig    `mapstructure:",squash"`
	wbcommon.MediaConfig       `mapstructure:",squash"`
	qemuvm.VMConfig            `mapstructure:",squash"`
	wbcommon.SourceImageConfig `mapstructure:",squash"`
	Comm                       communicator.Config `mapstructure:",squash"`

	// Directory that receives the disk, the manifest, `efivars.fd`, the TPM
	// state and the serial console log. Defaults to `output-<build name>`;
	// it must not exist unless `-force` is given.
	OutputDir string `mapstructure:"output_directory" required:"false"`
	// Name of the VM and of the disk file (`<vm_name>.qcow2`) and manifest
	// (`<vm_name>.json`). Defaults to `packer-<build name>`.
	VMName string `mapstructure:"vm_name" required:"false"`
	// Time to wait after QEMU starts before typing `boot_command`.
	// Defaults to `3s` for UEFI and `0s` for BIOS.
	BootWait time.Duration `mapstructure:"boot_wait" required:"false"`
	// Keys typed through QMP `send-key` after `boot_wait`, for example
	// `["<spacebar><wait1s><spacebar>"]`. Characters a-z, A-Z, 0-9, space
	// and `. , / \ - = ; : _`; keys `<enter>`, `<spacebar>`, `<esc>`,
	// `<tab>`, `<f1>`…`<f12>`; waits `<wait>`, `<wait5>`, `<wait500ms>`.
	// Defaults, with `firmware = "uefi"`, to pressing space four times a
	// second apart (KVM) or once a second for 30 s (TCG, where the firmware
	// reaches the CD much later), which answers Windows media's "Press any
	// key to boot from CD or DVD"; BIOS boots the CD without a key. Set
	// `[]` to type nothing.
	BootCommand []string `mapstructure:"boot_command" required:"false"`
	// Boot with UEFI Secure Boot (`firmware = "uefi"` only): the OVMF
	// build with Secure Boot and SMM, and a variable store with
	// Microsoft's keys enrolled, found through QEMU's firmware descriptors
	// (features `secure-boot`, `enrolled-keys`, `requires-smm`), else
	// Debian's `OVMF_CODE_4M.secboot.fd` and `OVMF_VARS_4M.ms.fd`. The
	// machine gets `smm=on` and the flash is locked to SMM
	// (`-global driver=cfi.pflash01,property=secure,value=on`). The install
	// media must then boot through a loader signed for the enrolled keys:
	// Windows media are signed by Microsoft; customized media must keep
	// Microsoft's signed boot files or be signed with a key in the
	// enrolled `db` (else the firmware answers `Access Denied`, and the
	// build fails as soon as the serial console shows it, naming the
	// refused boot option). Recorded in the manifest as `secure_boot`.
	// Defaults to `false`.
	SecureBoot bool `mapstructure:"secure_boot" required:"false"`
	// Keep the golden image (the disk, manifest, UEFI variables, TPM state
	// and serial log in `output_directory`) when Packer discards this
	// builder's artifact. Packer discards it after the post-processors ran
	// when none of them kept it (`keep_input_artifact`), and also when the
	// first post-processor of a chain fails, whatever its
	// `keep_input_artifact` says: a full disk while compressing would
	// otherwise take hours of Windows Setup and updates with it. The
	// golden image is what next month's build starts from
	// (`source_image`). Set to `false` to let Packer delete it then: the
	// files the build wrote go, and `output_directory` too once empty.
	// Defaults to `true`.
	KeepGoldenImage *bool `mapstructure:"keep_golden_image" required:"false"`
	// Extra QEMU arguments appended, in order, after winbake's own; each
	// entry is an option and at most one value, for example
	// `[["-device", "qemu-xhci"], ["-device", "usb-tablet"]]`. They never
	// replace winbake's arguments.
	QemuArgs [][]string `mapstructure:"qemu_args" required:"false"`

	bootKeys []qemuvm.BootKey
	// bootKeysTCG replace bootKeys under TCG when boot_command is the
	// default.
	bootKeysTCG []qemuvm.BootKey
	ctx         interpolate.Context
}

// prepareSourceWinRM reaches WinRM as the source image recorded: HTTPS
// with its certificate, or HTTP, which only the port forward on 127.0.0.1
// may carry.
func (c *Config) prepareSourceWinRM() []error {
	rec := c.SourceImageConfig.Manifest().BuildWinRM()
	if !rec.HTTPS() {
		if c.Network != qemuvm.NetworkUser {
			return []error{fmt.Errorf(`network: %q, but source_image's WinRM speaks HTTP with Basic authentication, which would carry the password over the network in the clear; `+
				`use network = "user" (the port forward on 127.0.0.1), or build the source image on the bridge (it then speaks HTTPS)`, c.Network)}
		}
		if c.Comm.WinRMUseSSL {
			return []error{fmt.Errorf("winrm_use_ssl: source_image's WinRM speaks HTTP only; leave winrm_use_ssl unset")}
		}
	}
	c.Comm.WinRMUseSSL = rec.HTTPS()
	if c.Comm.WinRMPort != 0 && c.Comm.WinRMPort != rec.Port {
		return []error{fmt.Errorf("winrm_port: %d, but source_image's WinRM listens on %d; leave winrm_port unset", c.Comm.WinRMPort, rec.Port)}
	}
	c.Comm.WinRMPort = rec.Port
	return nil
}

// Prepare decodes raws into c, fills in defaults and validates the result.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	var md mapstructure.Metadata
	err := config.Decode(c, &config.DecodeOpts{
		Metadata:           &md,
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: []string{"boot_command"}},
	}, raws...)
	if err != nil {
		return nil, err
	}
	bootCommandSet := c.BootCommand != nil

	var errs *packersdk.MultiError
	add := func(es ...error) {
		for _, e := range es {
			if e != nil {
				errs = packersdk.MultiErrorAppend(errs, e)
			}
		}
	}

	var warnings []string
	c.SetGiven(md.Keys)
	add(c.SourceImageConfig.Prepare()...)
	if c.SourceImageConfig.Enabled() {
		// An installed disk: no ISO, no answer file, no Setup.
		if c.RawSingleISOUrl != "" || len(c.ISOUrls) > 0 {
			add(fmt.Errorf("source_image: set together with iso_url; give exactly one: iso_url to install from an ISO, source_image to start from an installed disk"))
		}
		firmwareSet := c.Firmware != ""
		if m := c.SourceImageConfig.Manifest(); m != nil {
			if !firmwareSet {
				c.Firmware = m.Firmware
			}
			// A variable store with Secure Boot keys needs the Secure
			// Boot firmware again.
			c.SecureBoot = c.SecureBoot || m.SecureBoot
			if c.TPM == nil && c.Firmware == qemuvm.FirmwareUEFI {
				tpm := m.TPM
				c.TPM = &tpm
			}
		}
		add(c.VMConfig.Prepare(&c.ctx)...)
		if m := c.SourceImageConfig.Manifest(); m != nil && firmwareSet && m.Firmware != "" && m.Firmware != c.Firmware {
			add(fmt.Errorf("firmware: %q, but %s says source_image was installed with firmware = %q, which it needs to boot; set firmware = %q or leave it unset", c.Firmware, m.Path, m.Firmware, m.Firmware))
		}
		if c.Comm.Type != "none" && c.Comm.WinRMPassword == "" {
			add(fmt.Errorf("winrm_password: required with source_image: give the password of winrm_username (default Administrator) in the source image"))
		}
		if c.ImageName != "" {
			warnings = append(warnings, "image_name: ignored with source_image (Windows is already installed)")
		}
	} else {
		isoWarnings, isoErrs := wbcommon.PrepareISO(&c.ISOConfig, &c.ctx)
		warnings = append(warnings, isoWarnings...)
		add(isoErrs...)
		add(c.VMConfig.Prepare(&c.ctx)...)
		add(c.MediaConfig.Prepare(&c.ctx, c.Firmware)...)
		add(c.UnattendConfig.Prepare(&c.ctx, c.Firmware, c.DiskSizeMB)...)
		warnings = append(warnings, wbcommon.DriverWarnings(&c.VMConfig, &c.MediaConfig)...)
	}
	add(c.CheckFirmwareFiles()...)
	if c.SecureBoot && c.Firmware != qemuvm.FirmwareUEFI {
		add(fmt.Errorf(`secure_boot: Secure Boot needs firmware = "uefi"; set secure_boot = false or firmware = "uefi"`))
	}
	if c.Comm.Type == "" {
		c.Comm.Type = "winrm"
	}
	// The build account is set up in the answer file even without a
	// communicator.
	add(c.UnattendConfig.PrepareCredentials(&c.Comm)...)
	if c.Enabled() {
		add(c.prepareSourceWinRM()...)
	} else {
		add(c.PrepareWinRMTransport(&c.Comm, c.Network == qemuvm.NetworkUser)...)
	}
	switch c.Comm.Type {
	case "winrm", "none":
	default:
		add(fmt.Errorf(`communicator: %q is not supported; use "winrm" (default) or "none"`, c.Comm.Type))
	}
	if c.Comm.WinRMHost != "" && c.Network != qemuvm.NetworkBridge {
		add(fmt.Errorf("winrm_host: set to %q; with network = \"user\" the builder connects through its own port forward on 127.0.0.1, leave winrm_host unset (it is for network = \"bridge\")", c.Comm.WinRMHost))
	}
	add(c.Comm.Prepare(&c.ctx)...)

	if c.OutputDir == "" {
		c.OutputDir = "output-" + c.PackerBuildName
	}
	if c.VMName == "" {
		c.VMName = "packer-" + c.PackerBuildName
	}
	if c.KeepGoldenImage == nil {
		keep := true
		c.KeepGoldenImage = &keep
	}
	if !bootCommandSet && c.Firmware == qemuvm.FirmwareUEFI && !c.SourceImageConfig.Enabled() {
		c.BootCommand = qemuvm.DefaultUEFIBootCommand
		c.bootKeysTCG, _ = qemuvm.ParseBootCommand(qemuvm.DefaultUEFIBootCommandTCG)
		if c.BootWait == 0 {
			c.BootWait = 3 * time.Second
		}
	}
	if c.BootWait < 0 {
		add(fmt.Errorf("boot_wait: %s is negative; use a duration such as \"3s\"", c.BootWait))
	}
	keys, err := qemuvm.ParseBootCommand(c.BootCommand)
	if err != nil {
		add(err)
	}
	c.bootKeys = keys
	for _, a := range c.QemuArgs {
		if len(a) < 1 || len(a) > 2 || len(a[0]) < 2 || a[0][0] != '-' {
			add(fmt.Errorf("qemu_args: %q must be an option starting with - and at most one value, e.g. [\"-device\", \"usb-tablet\"]", a))
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}
