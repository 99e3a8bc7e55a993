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
	Format string `mapstructure:"format" required:"true"`

	// How `qcow2` clusters are compressed: `zstd` (the default), `zlib`, or
	// `none` for an uncompressed qcow2. Reading zstd-compressed clusters needs
	// QEMU 5.1 or later on every host that opens the image; pick `zlib` for
	// older hosts. Only valid with `format = "qcow2"`.
	Qcow2Compression string `mapstructure:"qcow2_compression" required:"false"`

	// Compression level for the `dd.*` formats:
	//
	// - `dd.gz` and `dd.tgz`: 1 (fastest) to 9 (smallest); default 5.
	// - `dd.xz`: the `xz` preset, 0 (fastest) to 9 (smallest); default 6.
	//
	// The `qcow2`, `raw`, `vhdx` and `vmdk` formats have no level, and
	// setting one with them is an error.
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
	// default the input artifact is discarded, except when the output lies
	// in (or below) the input's directory, as the default `output` does:
	// builders may discard an artifact by deleting their whole output
	// directory, so the input is then always kept.
	KeepInputArtifact bool `mapstructure:"keep_input_artifact" required:"false"`

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

	spec, known := lookupFormat(c.Format)
	switch {
	case c.Format == "":
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
			"format: is required; use one of %s", formatNames()))
	case !known:
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
			"format: %q is not supported; use one of %s", c.Format, formatNames()))
	}

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
		case known && c.Format != "qcow2":
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"qcow2_compression: only applies to format qcow2, not %q; remove it",
				c.Format))
		}
	} else if c.Format == "qcow2" {
		c.Qcow2Compression = qcow2Zstd
	}

	if c.CompressionLevel != nil && known {
		lvl := *c.CompressionLevel
		switch {
		case !spec.takesLevel():
			hint := "compression_level applies to dd.gz, dd.tgz and dd.xz"
			if spec.Name == "qcow2" {
				hint = "qcow2 compression is chosen with qcow2_compression"
			}
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"compression_level: format %s has no compression level; remove it (%s)",
				spec.Name, hint))
		case lvl < spec.MinLevel || lvl > spec.MaxLevel:
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(
				"compression_level: %d is out of range for format %s; use %d (fastest) to %d (smallest)",
				lvl, spec.Name, spec.MinLevel, spec.MaxLevel))
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
