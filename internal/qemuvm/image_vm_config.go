//go:generate go tool packer-sdc mapstructure-to-hcl2 -type ImageVMConfig
//go:generate go tool packer-sdc struct-markdown

package qemuvm

import (
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// ImageVMConfig is the virtual hardware the post-processors that boot a
// built image (winbake-sysprep, winbake-verify) let the template choose.
// The rest of the VM (firmware, TPM, machine type, disk bus, network
// device) is what the image was built with, read from its manifest.
type ImageVMConfig struct {
	// `auto` (default), `kvm` or `tcg`, as in winbake-qemu.
	Accelerator string `mapstructure:"accelerator" required:"false"`
	// Give Windows the Hyper-V enlightenments, as in winbake-qemu: on by
	// default under KVM, off under TCG; `false` leaves them off, `true`
	// fails unless the VM runs under KVM.
	HyperVEnlightenments *bool `mapstructure:"hyperv_enlightenments" required:"false"`
	// Number of virtual CPUs, 1 to 64. Defaults to `2`.
	CPUs int `mapstructure:"cpus" required:"false"`
	// Memory in MiB, 512 to 1048576. Defaults to `4096`.
	MemoryMB int `mapstructure:"memory" required:"false"`
	// Lowest host port tried for the WinRM forward (on 127.0.0.1).
	// Defaults to `2222`.
	HostPortMin int `mapstructure:"host_port_min" required:"false"`
	// Highest host port tried for the WinRM forward, exclusive. Defaults
	// to `4444`. Each port of the range is tried once, from a random one; a
	// range with no free port fails the build.
	HostPortMax int `mapstructure:"host_port_max" required:"false"`

	vm VMConfig
}

// Prepare fills in defaults and validates the settings by the builders'
// own rules (VMConfig.Prepare), each error naming its HCL field. given are
// the keys the template sets (config.DecodeOpts.Metadata), so that a 0 set
// on purpose is refused instead of read as unset.
func (c *ImageVMConfig) Prepare(ctx *interpolate.Context, given []string) []error {
	c.vm = VMConfig{
		Accelerator: c.Accelerator, HyperVEnlightenments: c.HyperVEnlightenments, CPUs: c.CPUs, MemoryMB: c.MemoryMB,
		HostPortMin: c.HostPortMin, HostPortMax: c.HostPortMax,
	}
	c.vm.SetGiven(given)
	errs := c.vm.Prepare(ctx)
	c.Accelerator, c.CPUs, c.MemoryMB, c.HostPortMin, c.HostPortMax = c.vm.Accelerator, c.vm.CPUs, c.vm.MemoryMB, c.vm.HostPortMin, c.vm.HostPortMax
	return errs
}

// VM is the VMConfig these settings make (after Prepare), its other
// fields at the builders' defaults until the image's manifest sets them.
func (c *ImageVMConfig) VM() VMConfig { return c.vm }
