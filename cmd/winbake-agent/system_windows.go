//go:build windows

package main

import (
	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/agent/windowssys"
)

func newSystem() (agent.System, error) { return windowssys.New(), nil }
