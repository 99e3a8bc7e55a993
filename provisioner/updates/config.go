//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,PackageConfig
//go:generate go tool packer-sdc struct-markdown

package updates

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-updates"

// Config holds the settings of the winbake-updates provisioner: which
// offline update packages to install into the guest, how they get there,
// and how far the reboot loop may go.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Local update packages (`.msu` or `.cab`) as paths or globs, in any
	// order, for example `["updates/2026-11/*.msu", "updates/extra.cab"]`.
	// winbake orders them itself: servicing stack first, then the
	// cumulative update (a 24H2-layout target with its checkpoint
	// cumulative updates in one DISM call pointed at the target), then
	// .NET, then the rest. Each glob must match at least one file, and
	// each file must be a .msu or .cab: `packer validate` checks both.
	Packages []string `mapstructure:"packages" required:"false"`
	// Further packages, one block each: a local `path` or a remote `url`
	// with its `checksum`, and optionally the `kind` to install it as.
	PackageBlocks []PackageConfig `mapstructure:"package" required:"false"`
	// How the packages reach the guest: `http` (default) serves them from
	// the build host and the guest downloads each one and verifies its
	// SHA-256; `winrm` uploads them through the communicator, which is
	// much slower, for guests that cannot reach the host.
	Delivery string `mapstructure:"delivery" required:"false"`
	// Hard cap on the reboots the provisioner starts. Reaching it with
	// packages still pending fails the build and names them. Defaults to
	// `10`.
	MaxReboots int `mapstructure:"max_reboots" required:"false"`
	// How many times a package that failed is tried again, each time after
	// a reboot. Defaults to `2`; `0` tries each package once.
	Retries int `mapstructure:"retries" required:"false"`
	// How long a reboot may take until the guest answers with a new boot
	// time; also how long the provisioner waits for the guest after a lost
	// connection. Defaults to `30m`.
	RestartTimeout time.Duration `mapstructure:"restart_timeout" required:"false"`
	// How long the install of one package may take, from the first attempt
	// until the agent reports it done, a wait for a reboot not counted;
	// also how long one package's download into the guest (or upload with
	// `delivery = "winrm"`) may take. An install still running after it
	// fails the build. Defaults to `2h`.
	InstallTimeout time.Duration `mapstructure:"install_timeout" required:"false"`
	// How long, after a reboot, the provisioner waits for Windows to finish
	// servicing (the Windows Modules Installer worker, TiWorker.exe, to
	// exit and the pending-reboot signals to clear) before it goes on or
	// reboots again; the wait is bounded so a stuck worker cannot hang the
	// build. Defaults to `10m`.
	ServicingTimeout time.Duration `mapstructure:"servicing_timeout" required:"false"`
	// Keep packages that failed in the image and retry them when a machine
	// deployed from it first boots: from `SetupComplete.cmd` (appended,
	// never rebooting) and from a cloudbase-init LocalScript when
	// cloudbase-init is installed. Without it, a failed package fails the
	// build.
	DeferFailed bool `mapstructure:"defer_failed" required:"false"`
	// Directory in the guest that receives the packages. Defaults to
	// `C:\ProgramData\winbake\updates`.
	GuestDirectory string `mapstructure:"guest_directory" required:"false"`
	// Address the guest uses to reach the build host's package server,
	// when neither the builder (`WinbakeHostIP`) nor the WinRM connection
	// tells it. Rarely needed.
	HTTPAddress string `mapstructure:"http_address" required:"false"`
	// Address the package server listens on. Defaults to the builder's
	// `WinbakeHostBindIP`, else `http_address`, else the address the
	// guest reaches.
	HTTPBindAddress string `mapstructure:"http_bind_address" required:"false"`

	ctx interpolate.Context
}

// PackageConfig is one `package` block.
type PackageConfig struct {
	// Local file of the package (`.msu` or `.cab`). Give `path` or `url`.
	Path string `mapstructure:"path" required:"false"`
	// URL to download the package from, once; it is kept in Packer's cache
	// (`PACKER_CACHE_DIR`) and reused while its checksum matches.
	URL string `mapstructure:"url" required:"false"`
	// The package's checksum as `sha256:<64 hex digits>`; required with
	// `url`, checked with `path` when given (at `packer validate`).
	Checksum string `mapstructure:"checksum" required:"false"`
	// Install the package as this kind instead of the one read from its
	// metadata: `servicing_stack`, `cumulative`, `checkpoint`, `dotnet` or
	// `other`.
	Kind string `mapstructure:"kind" required:"false"`
}

// Defaults.
const (
	DefaultMaxReboots       = 10
	DefaultRetries          = 2
	DefaultRestartTimeout   = 30 * time.Minute
	DefaultServicingTimeout = 10 * time.Minute
	DefaultInstallTimeout   = 2 * time.Hour
	DefaultGuestDirectory   = `C:\ProgramData\winbake\updates`
)

var checksumPattern = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)

// Prepare decodes and checks the configuration.
func (c *Config) Prepare(raws ...interface{}) error {
	c.Retries = -1
	if err := config.Decode(c, &config.DecodeOpts{
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...); err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(format string, args ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, args...)) }

	if len(c.Packages) == 0 && len(c.PackageBlocks) == 0 {
		add("packages: give at least one package (a path or glob in `packages`, or a `package` block)")
	}
	for i, p := range c.Packages {
		if strings.TrimSpace(p) == "" {
			add("packages[%d]: empty path", i)
		}
	}
	for i, b := range c.PackageBlocks {
		switch {
		case b.Path == "" && b.URL == "":
			add("package[%d]: set `path` (a local .msu or .cab) or `url`", i)
		case b.Path != "" && b.URL != "":
			add("package[%d]: set either `path` or `url`, not both", i)
		case b.URL != "" && b.Checksum == "":
			add("package[%d]: `url` needs `checksum = \"sha256:<64 hex digits>\"`", i)
		}
		if b.URL != "" && !strings.HasPrefix(b.URL, "http://") && !strings.HasPrefix(b.URL, "https://") {
			add("package[%d].url %q: want an http:// or https:// URL", i, b.URL)
		}
		if b.Checksum != "" && !checksumPattern.MatchString(b.Checksum) {
			add("package[%d].checksum %q: want \"sha256:\" and 64 hexadecimal digits", i, b.Checksum)
		}
		if b.Kind != "" {
			if _, ok := guestcontract.PackageKindNamed(b.Kind); !ok {
				add("package[%d].kind %q: accepted kinds are servicing_stack, cumulative, checkpoint, dotnet, other", i, b.Kind)
			}
		}
	}
	switch c.Delivery {
	case "":
		c.Delivery = "http"
	case "http", "winrm":
	default:
		add("delivery %q: accepted values are \"http\" (default) and \"winrm\"", c.Delivery)
	}
	switch {
	case c.MaxReboots == 0:
		c.MaxReboots = DefaultMaxReboots
	case c.MaxReboots < 0:
		add("max_reboots %d: want a positive number (default %d)", c.MaxReboots, DefaultMaxReboots)
	}
	switch {
	case c.Retries == -1:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		add("retries %d: want 0 or more (default %d)", c.Retries, DefaultRetries)
	}
	if c.RestartTimeout == 0 {
		c.RestartTimeout = DefaultRestartTimeout
	} else if c.RestartTimeout < 0 {
		add("restart_timeout %s: want a positive duration such as \"30m\"", c.RestartTimeout)
	}
	if c.InstallTimeout == 0 {
		c.InstallTimeout = DefaultInstallTimeout
	} else if c.InstallTimeout < 0 {
		add("install_timeout %s: want a positive duration such as \"2h\"", c.InstallTimeout)
	}
	if c.ServicingTimeout == 0 {
		c.ServicingTimeout = DefaultServicingTimeout
	} else if c.ServicingTimeout < 0 {
		add("servicing_timeout %s: want a positive duration such as \"10m\"", c.ServicingTimeout)
	}
	if c.GuestDirectory == "" {
		c.GuestDirectory = DefaultGuestDirectory
	} else if len(c.GuestDirectory) < 3 || c.GuestDirectory[1] != ':' || c.GuestDirectory[2] != '\\' || strings.ContainsAny(c.GuestDirectory, ` "&|<>^%`) {
		add("guest_directory %q: want an absolute Windows path without spaces or cmd.exe special characters, such as C:\\ProgramData\\winbake\\updates", c.GuestDirectory)
	}
	c.GuestDirectory = strings.TrimRight(c.GuestDirectory, `\`)
	for _, a := range []struct{ field, v string }{{"http_address", c.HTTPAddress}, {"http_bind_address", c.HTTPBindAddress}} {
		if a.v != "" && !validIP(a.v) {
			add("%s %q: want an IP address", a.field, a.v)
		}
	}
	for _, err := range c.checkPackageFiles() {
		errs = packersdk.MultiErrorAppend(errs, err)
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
