package agent

import (
	"context"
	"time"
)

// BootTimeResult is the document of `boot-time`.
type BootTimeResult struct {
	Header
	// BootTime is when the running Windows booted (LastBootUpTime), in UTC
	// and RFC 3339 with sub-second digits when known. It changes with
	// every reboot and is otherwise stable, so the plugin compares it
	// before and after a restart.
	BootTime time.Time `json:"boot_time,omitzero"`
}

func runBootTime(_ context.Context, e *env, _ []string, _ map[string]string) (document, *usageError) {
	res := &BootTimeResult{}
	t, err := e.sys.Power().BootTime()
	if err != nil {
		res.fail("reading the boot time: %v", err)
		return res, nil
	}
	res.BootTime = t.UTC()
	res.OK = true
	return res, nil
}
