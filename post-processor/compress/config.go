//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool packer-sdc struct-markdown

package compress

import (
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-compress"

// Config holds the settings of the winbake-compress post-processor.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The image format to write. One of:
	//
	// - `qcow2`: QEMU copy-on-write image, compressed per cluster (see
	//   `qcow2_compression`). For OpenStack Glance, Proxmox, libvirt.
	// - `raw`: plain sparse raw disk image.
	// - `vhdx`: dynamic VHDX, for Hyper-V and Azure Stack HCI.
	// - `vmdk`: stream-optimized VMDK, for VMware and OVF/OVA packaging.
	// - `dd.gz`: raw disk bytes compressed with gzip (MAAS `ddgz`).
	// - `dd.tgz`: a gzip-compressed tar holding a single member `root-dd`,
	//   the raw disk bytes (MAAS `ddtgz`).
	// - `dd.xz`: raw disk bytes compressed with xz (MAAS `ddxz`); needs the
	//   `xz` command (xz-utils) on the machine that runs Packer.
	//
	// Set `format` or `formats`.
	Format string `mapstructure:"format" required:"false"`

	// Several formats from one build, written one after the other from the
	// same input, e.g. `["qcow2", "dd.gz"]` for Glance and MAAS. The
	// artifact holds every file; winbake-glance takes the first format
	// Glance boots, winbake-maas the first MAAS deploys, winbake-verify the
	// qcow2. `output` must then contain `{{.Ext}}`, which the
	// default does. Set `format` or `formats`.
	Formats []string `mapstructure:"formats" required:"false"`

	// How `qcow2` clusters are compressed: `zstd` (the default), `zlib`, or
	// `none` for an uncompressed qcow2. Reading zstd-compressed clusters needs
	// QEMU 5.1 or later on every host that opens the image; pick `zlib` for
	// older hosts. Only valid when qcow2 is among the formats.
	Qcow2Compression string `mapstructure:"qcow2_compression" required:"false"`

	// Compression level for the `dd.*` formats:
	//
	// - `dd.gz` and `dd.tgz`: 1 (fastest) to 9 (smallest); default 5.
	// - `dd.xz`: the `xz` preset, 0 (fastest) to 9 (smallest); default 6.
	//
	// The `qcow2`, `raw`, `vhdx` and `vmdk` formats have no level, and
	// setting one when no dd.* format is written is an error.
	CompressionLevel *int `mapstructure:"compression_level" required:"false"`

	// Path of the file to write. Relative paths are relative to the directory
	// Packer runs in; missing directories are created. It is a Go template
	// rendered when the post-processor runs, with `{{.InputDir}}` (directory
	// of the input disk image), `{{.InputName}}` (its file name without the
	// last extension), `{{.Ext}}` (the format's extension, which is the format
	// name, e.g. `dd.gz`), `{{.BuildName}}` and `{{.BuilderType}}`.
	//
	// Defaults to `{{.InputDir}}/{{.InputName}}.{{.Ext}}`; when that is the
	// input file itself (e.g. `disk.qcow2` to `qcow2`), the default becomes
	// `{{.InputDir}}/{{.InputName}}-compressed.{{.Ext}}`. An explicit `output`
	// naming the input file is an error. An existing output file is only
	// replaced when Packer runs with `-force`.
	Output string `mapstructure:"output" required:"false"`

	// Keep the input artifact after this post-processor has run (Packer
	// reads `keep_input_artifact` on the post-processor block itself). By
	// default a winbake image is kept: the golden image of winbake-qemu or
	// winbake-libvirt, which the next build starts from, and the
	// generalized copy of winbake-sysprep, whose manifest and firmware
	// state winbake-verify and winbake-glance read after winbake-compress.
	// Other inputs are discarded. Set it to `false` to discard a winbake
	// image too. The input is always kept when the output lies in (or
	// below) the input's directory, as the default `output` does: builders
	// may discard an artifact by deleting their whole output directory.
	KeepInputArtifact bool `mapstructure:"keep_input_artifact" required:"false"`

	// specs are the formats to write, in order.
	specs []formatSpec

	ctx interpolate.Context
}

const defaultOutput = "{{.InputDir}}/{{.InputName}}.{{.Ext}}"
const defaultOutputOnCollision = "{{.InputDir}}/{{.InputName}}-compressed.{{.Ext}}"

// Qcow2 cluster compression choices, in the order they are documented.
const (
	qcow2Zstd = "zstd"
	qcow2Zlib = "zlib"
	qcow2None = "none"
)

var qcow2Compressions = []string{qcow2Zstd, qcow2Zlib, qcow2None}

// Default compression levels: 5 is pgzip's own default, 6 is xz's.
const (
	gzipDefaultLevel = 5
	xzDefaultLevel   = 6
)

// level returns the compression level to use for f.
func (c *Config) level(f formatSpec) int {
	if c.CompressionLevel != nil {
		return *c.CompressionLevel
	}
	return f.DefaultLevel
}

// Prepare decodes raws into c, fills in defaults and validates the result.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter: &interpolate.RenderFilter{
			// Rendered in PostProcess, once the input is known.
			Exclude: []string{"output"},
		},
	}, raws...)
	if err != nil {
		return err
	}

	var errs *packersdk.MultiError

	c.Format = strings.ToLower(strings.TrimSpace(c.Format))
	c.Qcow2Compression = strings.ToLower(strings.TrimSpace(c.Qcow2Compression))
	var formatErrs []error
	c.specs, formatErrs = c.resolveFormats()
	for _, err := range formatErrs {
		errs = packersdk.MultiErrorAppend(errs, err)
	}
	hasQcow2 := c.writes("qcow2")

	if c.Qcow2Compression != "" {
		valid := false
		for _, q := range qcow2Compressions {
			valid = valid || q == c.Qcow2Compression
		}
		switch {
		case !valid:
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"qcow2_compression: %q is not supported; use one of %s",
				c.Qcow2Compression, strings.Join(qcow2Compressions, ", ")))
		case len(c.specs) > 0 && !hasQcow2:
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"qcow2_compression: only applies to format qcow2, not %s; remove it",
				c.formatList()))
		}
	} else if hasQcow2 {
		c.Qcow2Compression = qcow2Zstd
	}

	if c.CompressionLevel != nil && len(c.specs) > 0 {
		lvl := *c.CompressionLevel
		leveled := 0
		for _, spec := range c.specs {
			if !spec.takesLevel() {
				continue
			}
			leveled++
			if lvl < spec.MinLevel || lvl > spec.MaxLevel {
				errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
					"compression_level: %d is out of range for format %s; use %d (fastest) to %d (smallest)",
					lvl, spec.Name, spec.MinLevel, spec.MaxLevel))
			}
		}
		if leveled == 0 {
			hint := "compression_level applies to dd.gz, dd.tgz and dd.xz"
			if hasQcow2 {
				hint = "qcow2 compression is chosen with qcow2_compression"
			}
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"compression_level: format %s has no compression level; remove it (%s)",
				c.formatList(), hint))
		}
	}

	if c.Output != "" && len(c.specs) > 1 {
		first, err1 := c.renderOutput(c.Output, outputTemplateData{InputDir: "dir", InputName: "disk", Ext: c.specs[0].Name})
		second, err2 := c.renderOutput(c.Output, outputTemplateData{InputDir: "dir", InputName: "disk", Ext: c.specs[1].Name})
		if err1 == nil && err2 == nil && first == second {
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"output: %q names the same file for every format of formats; put {{.Ext}} in it (e.g. \"out/disk.{{.Ext}}\")", c.Output))
		}
	}

	if c.Output != "" {
		if _, err := c.renderOutput(c.Output, outputTemplateData{
			InputDir: "dir", InputName: "disk", Ext: "qcow2",
		}); err != nil {
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf("output: %s", err))
		}
	}

	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// resolveFormats checks format or formats and returns their specs.
func (c *Config) resolveFormats() ([]formatSpec, []error) {
	field, names := "format", []string{c.Format}
	switch {
	case c.Format != "" && len(c.Formats) > 0:
		return nil, []error{fmt.Errorf("format and formats: set one of them (formats = [%q, ...] for several)", c.Format)}
	case c.Format == "" && len(c.Formats) == 0:
		return nil, []error{fmt.Errorf("format: is required; use one of %s (or formats for several)", formatNames())}
	case len(c.Formats) > 0:
		field, names = "formats", c.Formats
	}
	var specs []formatSpec
	var errs []error
	seen := map[string]bool{}
	for i, name := range names {
		name = strings.ToLower(strings.TrimSpace(name))
		where := field
		if field == "formats" {
			where = fmt.Sprintf("formats[%d]", i)
		}
		spec, ok := lookupFormat(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: %q is not supported; use one of %s", where, name, formatNames()))
		case seen[name]:
			errs = append(errs, fmt.Errorf("%s: %q is listed twice", where, name))
		default:
			seen[name] = true
			specs = append(specs, spec)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return specs, nil
}

// writes reports whether format is among the formats to write.
func (c *Config) writes(format string) bool {
	for _, s := range c.specs {
		if s.Name == format {
			return true
		}
	}
	return false
}

// formatList names the formats to write: "qcow2" or "qcow2, dd.gz".
func (c *Config) formatList() string {
	names := make([]string, len(c.specs))
	for i, s := range c.specs {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// renderOutput renders the output template tmpl with data.
func (c *Config) renderOutput(tmpl string, data outputTemplateData) (string, error) {
	ictx := c.ctx
	data.BuildName = c.PackerBuildName
	data.BuilderType = c.PackerBuilderType
	ictx.Data = &data
	out, err := interpolate.Render(tmpl, &ictx)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(out) == "" {
		return "", fmt.Errorf("%q renders to an empty path", tmpl)
	}
	return out, nil
}
