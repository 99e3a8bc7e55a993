// Package version holds the plugin version reported by `packer-plugin-winbake describe`.
package version

import "github.com/hashicorp/packer-plugin-sdk/version"

var (
	// Version is the semantic version of this build; releases set it with -ldflags.
	Version = "0.1.0"
	// VersionPrerelease marks development builds ("dev"); empty for a release.
	VersionPrerelease = "dev"
	// VersionMetadata is optional build metadata (semver "+..." suffix).
	VersionMetadata = ""

	// PluginVersion is what the plugin set reports to Packer.
	PluginVersion = version.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)
)
