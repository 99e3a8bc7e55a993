package main

import (
	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/winbake/packer-plugin-winbake/builder/libvirt"
	"github.com/winbake/packer-plugin-winbake/builder/qemu"
	"github.com/winbake/packer-plugin-winbake/post-processor/compress"
	"github.com/winbake/packer-plugin-winbake/post-processor/glance"
	"github.com/winbake/packer-plugin-winbake/post-processor/maas"
	"github.com/winbake/packer-plugin-winbake/post-processor/sysprep"
	"github.com/winbake/packer-plugin-winbake/post-processor/verify"
	"github.com/winbake/packer-plugin-winbake/provisioner/updates"
)

// registerComponents registers every winbake component with the plugin set.
// HCL type names are "winbake-<name>", e.g. post-processor "winbake-compress".
func registerComponents(pps *plugin.Set) {
	pps.RegisterBuilder("libvirt", new(libvirt.Builder))
	pps.RegisterBuilder("qemu", new(qemu.Builder))
	pps.RegisterProvisioner("updates", new(updates.Provisioner))
	pps.RegisterPostProcessor("compress", new(compress.PostProcessor))
	pps.RegisterPostProcessor("glance", new(glance.PostProcessor))
	pps.RegisterPostProcessor("maas", new(maas.PostProcessor))
	pps.RegisterPostProcessor("sysprep", new(sysprep.PostProcessor))
	pps.RegisterPostProcessor("verify", new(verify.PostProcessor))
}
