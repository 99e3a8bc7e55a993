package main

import (
	"github.com/hashicorp/packer-plugin-sdk/plugin"
)

// registerComponents registers every winbake component with the plugin set.
// HCL type names are "winbake-<name>", e.g. post-processor "winbake-compress".
func registerComponents(pps *plugin.Set) {
}
