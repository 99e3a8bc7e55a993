package testguest

import (
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/replay"
)

// TestCaptureReplay replays every exchange recorded with real Windows
// against the complete stand-in: the WinRM server in front of the
// simulated Windows, whose cmd.exe and PowerShell produce the output.
// Time is scaled as the replay requires (replay.TimeUnit per second, for
// Start-Sleep through the machine's clock).
func TestCaptureReplay(t *testing.T) {
	replay.RunAll(t, func(t *testing.T, c *replay.Capture) replay.Target {
		g := StartForTest(t, Options{
			User:  replay.User,
			Clock: scaledClock{unit: replay.TimeUnit},
			Server: wsman.Options{
				ActivityID:    c.ActivityID(),
				ReceiveGather: replay.ReceiveGather,
			},
		})
		user, pass := g.Credentials()
		return replay.Target{Addr: g.Addr(), User: user, Password: pass}
	})
}
