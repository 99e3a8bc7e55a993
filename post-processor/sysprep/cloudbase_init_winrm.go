package sysprep

import (
	"slices"
	"strings"
)

// winrmListenerPlugin is cloudbase-init's plugin that configures WinRM
// listeners at an instance's first boot (in its default plugin list).
const winrmListenerPlugin = "cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin"

// winrmHTTPSAtFirstBoot reports whether cloudbase-init will create an
// HTTPS listener at an instance's first boot: ConfigWinRMListenerPlugin
// is among its plugins (cloudbase-init's default list has it) and
// winrm_configure_https_listener is not turned off (its default is true,
// cloudbaseinit/conf/default.py).
func (ci *CloudbaseInitConfig) winrmHTTPSAtFirstBoot() bool {
	if ci == nil {
		return false
	}
	if len(ci.Plugins) > 0 && !slices.Contains(ci.Plugins, winrmListenerPlugin) {
		return false
	}
	v, ok := ci.Options["winrm_configure_https_listener"]
	return !ok || strings.EqualFold(strings.TrimSpace(v), "true")
}
