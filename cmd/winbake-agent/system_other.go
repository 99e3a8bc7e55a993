//go:build !windows

package main

import (
	"errors"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

// errNeedsWindows is what the agent says on any other system.
var errNeedsWindows = errors.New("winbake-agent needs Windows: it runs inside the Windows guest " +
	"(build it with GOOS=windows, see scripts/build-agent.sh); on other systems its logic runs " +
	"only inside winbake's simulated guest, which passes its own System to agent.Main")

func newSystem() (agent.System, error) { return nil, errNeedsWindows }
