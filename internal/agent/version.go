package agent

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/winbake/packer-plugin-winbake/version"
)

// Version is the agent's version: the plugin version it was built with
// (version.PluginVersion), so the plugin can tell a stale copy in the guest.
func Version() string { return version.PluginVersion.String() }

// Revision is the source revision the agent was built from (Go's VCS
// stamp, "+modified" for a changed tree; "" when not stamped), so the
// plugin also replaces an agent of the same version built from other code.
func Revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + modified
}

// KeyCurrentVersion holds the Windows build information.
const KeyCurrentVersion = `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`

// VersionResult is the document of `version`.
type VersionResult struct {
	Header
	// AgentVersion is Version().
	AgentVersion string `json:"agent_version"`
	// Revision is Revision().
	Revision string `json:"revision,omitempty"`
	// OS is read from KeyCurrentVersion; nil when the key does not exist.
	// Values that are absent are left empty; registry errors are warnings.
	OS *OSInfo `json:"os,omitempty"`
}

// OSInfo is the running Windows as KeyCurrentVersion describes it.
// ProductName is as stored: Windows 11 still calls itself "Windows 10 ...".
type OSInfo struct {
	ProductName      string `json:"product_name,omitempty"`      // "Windows Server 2022 Standard"
	EditionID        string `json:"edition_id,omitempty"`        // "ServerStandard"
	InstallationType string `json:"installation_type,omitempty"` // "Server", "Server Core", "Client"
	DisplayVersion   string `json:"display_version,omitempty"`   // "21H2", "24H2"
	CurrentBuild     string `json:"current_build,omitempty"`     // "20348"
	// UBR is the update build revision (REG_DWORD); nil when absent.
	UBR *uint32 `json:"ubr,omitempty"`
	// Build is CurrentBuild.UBR ("20348.2340"), or CurrentBuild alone.
	Build string `json:"build,omitempty"`
	// SystemRoot is the Windows directory ("C:\Windows").
	SystemRoot string `json:"system_root,omitempty"`
}

func runVersion(_ context.Context, e *env, _ []string, _ map[string]string) (document, *usageError) {
	res := &VersionResult{AgentVersion: Version(), Revision: Revision()}
	res.OK = true
	reg := e.sys.Registry()
	exists, err := reg.KeyExists(KeyCurrentVersion)
	if err != nil {
		res.warn("reading %s: %v", KeyCurrentVersion, err)
		return res, nil
	}
	if !exists {
		return res, nil
	}
	osi := &OSInfo{}
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"ProductName", &osi.ProductName},
		{"EditionID", &osi.EditionID},
		{"InstallationType", &osi.InstallationType},
		{"DisplayVersion", &osi.DisplayVersion},
		{"CurrentBuild", &osi.CurrentBuild},
		{"SystemRoot", &osi.SystemRoot},
	} {
		s, ok, err := reg.String(KeyCurrentVersion, v.name)
		if err != nil {
			res.warn("reading %s %s: %v", KeyCurrentVersion, v.name, err)
		} else if ok {
			*v.dst = s
		}
	}
	ubr, ok, err := reg.DWORD(KeyCurrentVersion, "UBR")
	if err != nil {
		res.warn("reading %s UBR: %v", KeyCurrentVersion, err)
	} else if ok {
		osi.UBR = &ubr
	}
	osi.Build = osi.CurrentBuild
	if osi.CurrentBuild != "" && osi.UBR != nil {
		osi.Build = fmt.Sprintf("%s.%d", osi.CurrentBuild, *osi.UBR)
	}
	res.OS = osi
	e.progress("agent %s, Windows build %q", res.AgentVersion, osi.Build)
	return res, nil
}

// systemRoot is the Windows directory from the registry's SystemRoot value,
// or C:\Windows when it cannot be read (with a warning on h).
func systemRoot(reg Registry, h *Header) string {
	s, ok, err := reg.String(KeyCurrentVersion, "SystemRoot")
	switch {
	case err != nil:
		h.warn("reading %s SystemRoot: %v; assuming C:\\Windows", KeyCurrentVersion, err)
	case ok && s != "":
		return s
	}
	return `C:\Windows`
}
