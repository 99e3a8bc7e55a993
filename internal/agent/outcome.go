package agent

import "fmt"

// Outcome is the result of installing a package, from the exit code of
// DISM (or wusa-style codes, which DISM and the plugin may also see).
type Outcome string

// Outcomes, see ClassifyExitCode.
const (
	// Installed: exit 0.
	Installed Outcome = "installed"
	// InstalledRebootRequired: installed; Windows finishes after a reboot.
	InstalledRebootRequired Outcome = "installed_reboot_required"
	// RebootInitiated: installed and a reboot has already started.
	RebootInitiated Outcome = "reboot_initiated"
	// AlreadyInstalled: nothing to do.
	AlreadyInstalled Outcome = "already_installed"
	// NotApplicable: the package does not apply to this Windows (wrong
	// edition or build, or superseded by an installed update).
	NotApplicable Outcome = "not_applicable"
	// NeedsServicingStack: a newer servicing stack update must be
	// installed first; retry afterwards.
	NeedsServicingStack Outcome = "needs_servicing_stack"
	// Failed: anything else.
	Failed Outcome = "failed"
)

// Exit codes with a meaning of their own (windows-servicing.md §2).
const (
	codeSuccess              uint32 = 0
	codeRebootRequired       uint32 = 3010       // ERROR_SUCCESS_REBOOT_REQUIRED
	codeRebootInitiated      uint32 = 1641       // ERROR_SUCCESS_REBOOT_INITIATED
	codeWUAlreadyInstalled   uint32 = 0x00240006 // WU_S_ALREADY_INSTALLED, 2359302
	codeWURebootRequired     uint32 = 0x00240005 // WU_S_REBOOT_REQUIRED, 2359301
	codeCBSStackShutdown     uint32 = 0x000F0803 // CBS_S_STACK_SHUTDOWN_REQUIRED, 985091
	codeCBSNotApplicable     uint32 = 0x800F081E // CBS_E_NOT_APPLICABLE, 2148468766
	codeWUNotApplicable      uint32 = 0x80240017 // WU_E_NOT_APPLICABLE, 2149842967
	codeCBSNewServicingStack uint32 = 0x800F0823 // CBS_E_NEW_SERVICING_STACK_REQUIRED, 2148468771
)

// ClassifyExitCode maps the exit code of DISM /Add-Package (or wusa) to an
// Outcome:
//
//	0                                          installed
//	3010, 2359301 (0x240005), 985091 (0xF0803) installed_reboot_required
//	1641                                       reboot_initiated
//	2359302 (0x240006)                         already_installed
//	2148468766 (0x800F081E), 2149842967 (0x80240017) not_applicable
//	2148468771 (0x800F0823)                    needs_servicing_stack
//	anything else                              failed
//
// 0xF0803 is CBS_S_STACK_SHUTDOWN_REQUIRED ("the servicing stack was updated
// and the computer needs to restart", Microsoft's CBS error table), a
// success code. DISM has no exit code of its own for "already installed":
// adding an installed package succeeds (0), so it is reported as installed.
func ClassifyExitCode(code uint32) Outcome {
	switch code {
	case codeSuccess:
		return Installed
	case codeRebootRequired, codeWURebootRequired, codeCBSStackShutdown:
		return InstalledRebootRequired
	case codeRebootInitiated:
		return RebootInitiated
	case codeWUAlreadyInstalled:
		return AlreadyInstalled
	case codeCBSNotApplicable, codeWUNotApplicable:
		return NotApplicable
	case codeCBSNewServicingStack:
		return NeedsServicingStack
	}
	return Failed
}

// OK reports whether the outcome leaves nothing to fix: installed (with or
// without a reboot), already installed, or not applicable (the plugin
// records it and moves on). NeedsServicingStack and Failed are not OK.
func (o Outcome) OK() bool {
	switch o {
	case Installed, InstalledRebootRequired, RebootInitiated, AlreadyInstalled, NotApplicable:
		return true
	}
	return false
}

// RebootRequired reports whether the outcome asks for a reboot (or one has
// already started).
func (o Outcome) RebootRequired() bool {
	return o == InstalledRebootRequired || o == RebootInitiated
}

// rank orders outcomes for combining the packages of an .msu: the higher
// rank wins. Skips (already installed, not applicable) rank lowest and are
// resolved separately.
func (o Outcome) rank() int {
	switch o {
	case Failed:
		return 6
	case NeedsServicingStack:
		return 5
	case RebootInitiated:
		return 4
	case InstalledRebootRequired:
		return 3
	case Installed:
		return 2
	}
	return 0
}

// HexCode formats an exit code as Windows tools print HRESULTs: "0x800F081E".
func HexCode(code uint32) string { return fmt.Sprintf("0x%X", code) }
