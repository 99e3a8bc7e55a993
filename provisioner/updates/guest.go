package updates

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/agent/agentbin"
	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/winrmwait"
)

// guest runs winbake-agent verbs over the communicator.
type guest struct {
	comm packersdk.Communicator
	ui   packersdk.Ui
	// wait bounds how long calls keep retrying through lost connections
	// and reboots (restart_timeout).
	wait time.Duration
	// poll is the pause between retries.
	poll time.Duration
	// long bounds the verbs that move or install a package
	// (install_timeout).
	long time.Duration
	// winrmHost and winrmPort are where the communicator connects, when
	// known: waitBootAfter asks there first whether the guest reacts.
	winrmHost string
	winrmPort int
}

// Bounds of the agent's calls. A query (version, boot time, pending
// reboot, ...) answers within seconds, PowerShell-free; five minutes leave
// room for a guest busy servicing under TCG. An upload of winbake-agent or
// of a small file over WinRM runs at Packer's winrmcp speed, a few hundred
// KiB/s at best (hashicorp/packer#7998).
const (
	agentQueryTimeout = 5 * time.Minute
	agentQueryLimit   = "the bound of a query to winbake-agent, which answers within seconds"
	uploadTimeout     = time.Hour
	uploadLimit       = "the bound of an upload of a small file over WinRM"
)

// bound returns how long the agent verb may run and where that comes
// from.
func (g *guest) bound(verb string) (time.Duration, string) {
	switch verb {
	case "install", "fetch":
		if g.long > 0 {
			return g.long, "install_timeout"
		}
	}
	return agentQueryTimeout, agentQueryLimit

}

// errTransport marks a call whose answer was lost (connection dropped,
// guest rebooting): the verb may or may not have run.
var errTransport = errors.New("no answer from the guest")

// runOnce runs the agent once, within the verb's bound, and decodes its
// document into doc.
func (g *guest) runOnce(ctx context.Context, doc any, args ...string) error {
	timeout, limit := g.bound(args[0])
	return g.runOnceWithin(ctx, doc, timeout, limit, args...)
}

// runOnceWithin is runOnce with the bound given (limit says where it
// comes from).
func (g *guest) runOnceWithin(ctx context.Context, doc any, timeout time.Duration, limit string, args ...string) error {
	r, err := guestcmd.Run(ctx, g.comm, guestcmd.Command{
		Line: guestcontract.AgentPath + " " + strings.Join(args, " "), What: "winbake-agent " + args[0],
		Timeout: timeout, Limit: limit,
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		// The answer was lost (connection dropped, guest rebooting, no
		// answer within the bound): the verb may or may not have run.
		return fmt.Errorf("%w: %w", errTransport, err)
	}
	code := r.ExitStatus
	line := bytes.TrimSpace([]byte(r.Stdout))
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if len(line) == 0 || line[0] != '{' {
		return fmt.Errorf("%w: winbake-agent %s exited %d without its JSON document (stderr %q)", errTransport, args[0], code, tail(r.Stderr, 400))
	}
	if err := json.Unmarshal(line, doc); err != nil {
		return fmt.Errorf("%w: decoding the answer of winbake-agent %s: %v", errTransport, args[0], err)
	}
	var h agent.Header
	if err := json.Unmarshal(line, &h); err != nil {
		return fmt.Errorf("%w: decoding the header of winbake-agent %s's answer: %v", errTransport, args[0], err)
	}
	if h.Protocol != agent.Protocol {
		return fmt.Errorf("winbake-agent %s speaks protocol %d, want %d", args[0], h.Protocol, agent.Protocol)
	}
	if code == int(agent.ExitUsage) {
		return fmt.Errorf("winbake-agent %s: usage error: %s", args[0], h.Error)
	}
	return nil
}

// run runs the agent, retrying through lost answers until g.wait passes.
// Only for verbs that are safe to repeat.
func (g *guest) run(ctx context.Context, doc any, args ...string) error {
	deadline := time.Now().Add(g.wait)
	for {
		err := g.runOnce(ctx, doc, args...)
		if err == nil || !errors.Is(err, errTransport) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("winbake-agent %s: %w; gave up after %s (restart_timeout)", args[0], err, g.wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(g.poll):
		}
	}
}

// ensureAgent uploads winbake-agent unless the guest already has this version.
func (g *guest) ensureAgent(ctx context.Context) error {
	var v agent.VersionResult
	if err := g.runOnce(ctx, &v, "version"); err == nil && v.AgentVersion == agent.Version() && v.Revision == agent.Revision() {
		return nil
	}
	exe, err := agentbin.Windows()
	if err != nil {
		return err
	}
	g.ui.Say(fmt.Sprintf("Uploading winbake-agent (%d KiB) to %s", len(exe)>>10, guestcontract.AgentPath))
	if err := guestcmd.Upload(ctx, g.comm, guestcontract.AgentPath, bytes.NewReader(exe), nil, uploadTimeout, uploadLimit); err != nil {
		return fmt.Errorf("uploading winbake-agent to %s: %w", guestcontract.AgentPath, err)
	}
	v = agent.VersionResult{}
	if err := g.run(ctx, &v, "version"); err != nil {
		return err
	}
	if v.AgentVersion != agent.Version() {
		return fmt.Errorf("the guest's winbake-agent is version %q after the upload, want %q", v.AgentVersion, agent.Version())
	}
	if v.Revision != agent.Revision() {
		g.ui.Message(fmt.Sprintf("Warning: the guest's winbake-agent reports revision %q, the plugin %q", v.Revision, agent.Revision()))
	}
	return nil
}

func (g *guest) bootTime(ctx context.Context) (time.Time, error) {
	var b agent.BootTimeResult
	if err := g.run(ctx, &b, "boot-time"); err != nil {
		return time.Time{}, err
	}
	if !b.OK {
		return time.Time{}, fmt.Errorf("reading the guest's boot time: %s", b.Error)
	}
	return b.BootTime, nil
}

func (g *guest) pendingReboot(ctx context.Context) (agent.PendingReboot, error) {
	var p agent.PendingRebootResult
	if err := g.run(ctx, &p, "pending-reboot"); err != nil {
		return agent.PendingReboot{}, err
	}
	if !p.OK {
		return agent.PendingReboot{}, fmt.Errorf("checking for a pending reboot: %s", p.Error)
	}
	return p.PendingReboot, nil
}

// rebootPoll bounds the pause between boot-time questions while the guest
// restarts: a question costs a refused connection, or one agent call once
// the guest answers, so asking every second costs the guest little and
// finds it back at most a second after WinRM listens.
const rebootPoll = time.Second

// waitBootAfter waits until the guest answers with a boot time later than
// before: the proof that it rebooted.
func (g *guest) waitBootAfter(ctx context.Context, before time.Time) (time.Time, error) {
	deadline := time.Now().Add(g.wait)
	poll := min(g.poll, rebootPoll)
	for {
		// While the guest restarts, a call could hang on a connection
		// QEMU's user network holds for it (see winrmwait); a look that
		// gets no reaction waits for the next try instead.
		if g.winrmHost != "" {
			if err := winrmwait.Answered(ctx, g.winrmHost, g.winrmPort); err != nil {
				if time.Now().After(deadline) {
					return time.Time{}, fmt.Errorf("the guest did not come back from its reboot within %s (restart_timeout): %v", g.wait, err)
				}
				select {
				case <-ctx.Done():
					return time.Time{}, ctx.Err()
				case <-time.After(poll):
				}
				continue
			}
		}
		var b agent.BootTimeResult
		err := g.runOnce(ctx, &b, "boot-time")
		if err == nil && b.OK && b.BootTime.After(before) {
			return b.BootTime, nil
		}
		if err != nil && !errors.Is(err, errTransport) {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the guest did not come back from its reboot within %s (restart_timeout): its boot time is still %s", g.wait, before.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(poll):
		}
	}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
