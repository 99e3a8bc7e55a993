package wsman

import (
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/replay"
)

// TestCaptureReplay replays every recorded Windows exchange against the
// server with the test host (package replay documents the comparison).
func TestCaptureReplay(t *testing.T) {
	replay.RunAll(t, func(t *testing.T, c *replay.Capture) replay.Target {
		s, h := newTestServer(t, Options{ActivityID: c.ActivityID(), ReceiveGather: replay.ReceiveGather})
		h.sleepUnit = replay.TimeUnit
		return replay.Target{Addr: s.Addr(), User: testUser, Password: testPassword}
	})
}
