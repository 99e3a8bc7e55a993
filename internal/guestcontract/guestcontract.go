// Package guestcontract holds what winbake leaves in a Windows guest for
// later steps of a build to find: where winbake-agent lives, and the
// record winbake-updates writes of the packages it installed, which the
// builders copy into the image's manifest and winbake-verify checks
// against DISM.
package guestcontract

import "github.com/winbake/packer-plugin-winbake/internal/agent/agentbin"

// Dir is winbake's directory in the guest.
const Dir = `C:\ProgramData\winbake`

// AgentPath is where winbake-updates and winbake-sysprep keep
// winbake-agent in the guest.
const AgentPath = Dir + `\` + agentbin.FileName

// UpdatesRecordPath is where winbake-updates leaves its UpdatesRecord in
// the image.
const UpdatesRecordPath = Dir + `\updates.json`
