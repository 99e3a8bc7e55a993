// Package agentbin carries the windows/amd64 build of winbake-agent inside
// the plugin, for upload into the guest.
//
// The executable is generated, not committed: scripts/build-agent.sh (run by
// `make agent`, which the build and test targets depend on, or by `go
// generate` here) writes bin/winbake-agent.exe before the plugin is
// compiled. When it was not built, Windows returns ErrNotBuilt.
package agentbin

//go:generate bash ../../../scripts/build-agent.sh

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
)

// FileName is the agent's file name in the guest.
const FileName = "winbake-agent.exe"

// bin holds bin/README.md, always, and bin/winbake-agent.exe when built.
//
//go:embed bin
var bin embed.FS

// ErrNotBuilt is returned by Windows when the plugin was compiled without
// the agent.
var ErrNotBuilt = errors.New("winbake-agent.exe is not built into this plugin: run scripts/build-agent.sh (make agent) and rebuild the plugin")

// Windows returns the windows/amd64 executable of winbake-agent.
func Windows() ([]byte, error) {
	b, err := fs.ReadFile(bin, "bin/"+FileName)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(b) == 0 {
		return nil, ErrNotBuilt
	}
	if err != nil {
		return nil, fmt.Errorf("reading the embedded %s: %w", FileName, err)
	}
	return b, nil
}
