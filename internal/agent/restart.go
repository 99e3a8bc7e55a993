package agent

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrShutdownInProgress is what Power.Restart and Power.PowerOff return
// (wrapped or as is) when Windows refuses because a shutdown is already in
// progress or scheduled (ERROR_SHUTDOWN_IN_PROGRESS 1115,
// ERROR_SHUTDOWN_IS_SCHEDULED 1190).
var ErrShutdownInProgress = errors.New("a system shutdown is already in progress or scheduled")

// MaxRestartDelay is the longest --delay: shutdown.exe's /t limit (10 years).
const MaxRestartDelay = 315360000 * time.Second

// MaxReasonLength is the longest --reason in characters (shutdown.exe /c).
const MaxReasonLength = 512

// DefaultRestartReason is the reason when --reason is not given.
const DefaultRestartReason = "winbake restart"

// RestartResult is the document of `restart`.
type RestartResult struct {
	Header
	// BootTime is the boot time before the restart was requested (as
	// `boot-time` reports it): the restart is done once it has changed.
	BootTime time.Time `json:"boot_time,omitzero"`
	// DelaySeconds and Reason are what Windows was asked for.
	DelaySeconds int64  `json:"delay_seconds"`
	Reason       string `json:"reason"`
	// AlreadyShuttingDown is true when Windows refused because a shutdown
	// was already in progress or scheduled (ErrShutdownInProgress). "ok" is
	// still true, as the machine is going down anyway, but the scheduled
	// shutdown may be a power-off or start later than asked.
	AlreadyShuttingDown bool `json:"already_shutting_down,omitempty"`
}

// parseDelay accepts a Go duration ("0s", "30s", "2m") or a bare number of
// seconds, in whole seconds from 0 to MaxRestartDelay.
func parseDelay(s string) (time.Duration, bool) {
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(MaxRestartDelay/time.Second) {
			return 0, false
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, false
	}
	if d < 0 || d > MaxRestartDelay || d%time.Second != 0 {
		return 0, false
	}
	return d, true
}

func runRestart(_ context.Context, e *env, _ []string, flags map[string]string) (document, *usageError) {
	delay := time.Duration(0)
	if s, ok := flags["delay"]; ok {
		d, ok := parseDelay(s)
		if !ok {
			return nil, usagef("--delay %q: want whole seconds from 0s to %s, as a duration (30s, 2m) or a number of seconds", s, MaxRestartDelay)
		}
		delay = d
	}
	reason := DefaultRestartReason
	if s, ok := flags["reason"]; ok {
		reason = strings.TrimSpace(s)
		if reason == "" || utf8.RuneCountInString(reason) > MaxReasonLength {
			return nil, usagef("--reason must have 1 to %d characters", MaxReasonLength)
		}
	}
	res := &RestartResult{DelaySeconds: int64(delay / time.Second), Reason: reason}
	power := e.sys.Power()
	bt, err := power.BootTime()
	if err != nil {
		// Without the boot time the plugin cannot tell when the restart is
		// done, so do not restart.
		res.fail("reading the boot time (not restarting): %v", err)
		return res, nil
	}
	res.BootTime = bt.UTC()
	e.progress("restarting in %s (%q); booted at %s", delay, reason, res.BootTime.Format(time.RFC3339))
	if err := power.Restart(delay, reason); err != nil {
		if !errors.Is(err, ErrShutdownInProgress) {
			res.fail("requesting the restart: %v", err)
			return res, nil
		}
		res.AlreadyShuttingDown = true
		res.warn("restart not scheduled: %v", err)
	}
	res.OK = true
	return res, nil
}
