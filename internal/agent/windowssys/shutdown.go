package windowssys

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

// Restarts and power-offs go through shutdown.exe rather than
// InitiateSystemShutdownEx: shutdown.exe enables SeShutdownPrivilege itself,
// it is what Packer's windows-restart provisioner and other Windows
// builders have run over WinRM for years, and its refusals (1115 shutdown in
// progress, 1190 shutdown scheduled) are the codes their restart loops
// already know (winrm-protocol.md §10).

// shutdownArgs builds the arguments of `shutdown.exe`: /r (restart) or /s
// (power off), /f (close applications without asking, implied by Windows
// anyway when /t is above 0), /t seconds, /d p:4:1 (planned, "Application:
// Maintenance", so the Shutdown Event Tracker does not record an unplanned
// shutdown) and /c reason.
func shutdownArgs(restart bool, delay time.Duration, reason string) []string {
	mode := "/s"
	if restart {
		mode = "/r"
	}
	secs := int64(delay / time.Second)
	if delay%time.Second != 0 {
		secs++
	}
	args := []string{mode, "/f", "/t", strconv.FormatInt(secs, 10), "/d", "p:4:1"}
	if reason = strings.TrimSpace(reason); reason != "" {
		if r := []rune(reason); len(r) > agent.MaxReasonLength {
			reason = string(r[:agent.MaxReasonLength])
		}
		args = append(args, "/c", reason)
	}
	return args
}

// Exit codes of shutdown.exe that mean "already going down".
const (
	errorShutdownInProgress  = 1115 // ERROR_SHUTDOWN_IN_PROGRESS
	errorShutdownIsScheduled = 1190 // ERROR_SHUTDOWN_IS_SCHEDULED
)

// shutdownError turns shutdown.exe's exit code into the error Power returns.
func shutdownError(args []string, code uint32, output string) error {
	switch code {
	case 0:
		return nil
	case errorShutdownInProgress, errorShutdownIsScheduled:
		return fmt.Errorf("%w (shutdown.exe exit code %d)", agent.ErrShutdownInProgress, code)
	}
	msg := fmt.Sprintf("shutdown.exe %s: exit code %d (%s)", strings.Join(args, " "), code, agent.HexCode(code))
	if output = strings.TrimSpace(output); output != "" {
		msg += ": " + output
	}
	return fmt.Errorf("%s", msg)
}

// fileTimeToTime converts a Windows FILETIME-style count (100-ns intervals
// since 1601-01-01 UTC) to a UTC time.
func fileTimeToTime(ft int64) time.Time {
	const unixEpoch = 116444736000000000 // 1970-01-01 in 100-ns intervals since 1601
	return time.Unix(0, (ft-unixEpoch)*100).UTC()
}
