// Command packer-plugin-winbake is the winbake Packer plugin: builders, a
// provisioner and post-processors that bake Windows cloud images.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/winbake/packer-plugin-winbake/version"
)

func main() {
	pps := plugin.NewSet()
	registerComponents(pps)
	pps.SetVersion(version.PluginVersion)
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
