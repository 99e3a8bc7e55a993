package main

import (
	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/winbake/packer-plugin-winbake/builder/qemu"
	"github.com/winbake/packer-plugin-winbake/post-processor/compress"
)

// registerComponents registers every winbake component with the plugin set.
// HCL type names are "winbake-<name>", e.g. post-processor "winbake-compress".
func registerComponents(pps *plugin.Set) {
	pps.RegisterBuilder("qemu", new(qemu.Builder))
	pps.RegisterPostProcessor("compress", new(compress.PostProcessor))
}
