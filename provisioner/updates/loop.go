package updates

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
)

// Package results in the manifest and the summary.
const (
	resultPending       = "pending"
	resultInstalled     = "installed"
	resultAlready       = "already_installed"
	resultNotApplicable = "not_applicable"
	resultFailed        = "failed"
	resultDeferred      = "deferred"
)

// pkgState is a package's progress through the loop.
type pkgState struct {
	pkg       *Package
	guestPath string
	result    string // one of the result* constants; "" until tried
	// outcome and exitCode are the agent's last answer.
	outcome  agent.Outcome
	exitCode uint32
	attempts int
	// rebootsAfter counts the reboots after its install that finished it.
	rebootsAfter int
	// waitingForReboot is set when it was installed and asked for a reboot.
	waitingForReboot bool
	// retryAfterReboot: it failed and is tried again after the next reboot.
	retryAfterReboot bool
	// needsSSU: 0x800F0823; tried again once a servicing stack went in.
	needsSSU bool
	message  string
	// withTarget is the cumulative update a checkpoint goes in with: DISM,
	// pointed at the target .msu, adds the checkpoints from its folder.
	withTarget *pkgState
}

// chainCheckpoints makes the checkpoint updates of a 24H2-layout target go
// in with it, in one DISM call pointed at the target, as Microsoft
// documents for checkpoint cumulative updates; installing a checkpoint on
// its own onto an image already past it fails (0x80073712).
func (r *installRun) chainCheckpoints() {
	var target *pkgState
	for _, s := range r.states {
		if s.pkg.Kind == guestcontract.KindCumulative && s.pkg.WimPayload {
			target = s
		}
	}
	if target == nil {
		return
	}
	for _, s := range r.states {
		if s.pkg.Kind == guestcontract.KindCheckpoint && s.pkg.WimPayload {
			s.withTarget = target
		}
	}
}

// checkpointsOf lists the names of the checkpoints going in with target.
func (r *installRun) checkpointsOf(target *pkgState) []string {
	var out []string
	for _, s := range r.states {
		if s.withTarget == target {
			out = append(out, s.pkg.Name)
		}
	}
	return out
}

type installRun struct {
	cfg    *Config
	ui     packersdk.Ui
	g      *guest
	poll   time.Duration
	states []*pkgState
	// reboots the provisioner started; observed counts reboots seen,
	// including the ones Windows did by itself.
	reboots, observed int
	bootTime          time.Time
}

func (r *installRun) done(s *pkgState) bool {
	if s.withTarget != nil {
		return r.done(s.withTarget)
	}
	return s.result != "" && s.result != resultPending
}

func (r *installRun) failed() []*pkgState {
	var out []*pkgState
	for _, s := range r.states {
		if s.result == resultFailed || s.result == resultDeferred {
			out = append(out, s)
		}
	}
	return out
}

// loop installs in rounds: every package that can go in now, then a reboot
// when anything asks for one, until nothing is left or max_reboots is hit.
func (r *installRun) loop(ctx context.Context) error {
	var err error
	if r.bootTime, err = r.g.bootTime(ctx); err != nil {
		return err
	}
	for round := 1; ; round++ {
		rebootNeeded := false
		progressed := false
		for i, s := range r.states {
			if r.done(s) || s.retryAfterReboot || s.withTarget != nil {
				continue
			}
			if s.needsSSU && !r.ssuProgressed(s) {
				continue
			}
			count := 0
			for _, t := range r.states {
				if r.done(t) {
					count++
				}
			}
			r.ui.Say(fmt.Sprintf("[%d/%d] Installing %s (%s%s), attempt %d", count+1, len(r.states), s.pkg.Name, s.pkg.Kind, kbSuffix(s.pkg), s.attempts+1))
			if cps := r.checkpointsOf(s); len(cps) > 0 {
				r.ui.Message("    with its checkpoint update(s) " + strings.Join(cps, ", ") + ": DISM, pointed at the target, takes the ones it needs from its folder")
			}
			res, err := r.install(ctx, s)
			if err != nil {
				return err
			}
			progressed = true
			r.record(s, res)
			r.ui.Message(fmt.Sprintf("    %s: %s (exit code %d, %s)%s", s.pkg.Name, res.Result, res.ExitCode, res.ExitCodeHex, msgSuffix(s.message)))
			if s.waitingForReboot || s.retryAfterReboot {
				rebootNeeded = true
			}
			if res.Result == agent.RebootInitiated {
				r.ui.Say("The package started a reboot itself")
				if err := r.afterReboot(ctx, false); err != nil {
					return err
				}
				_ = i
				rebootNeeded = false
			}
		}
		pending, err := r.g.pendingReboot(ctx)
		if err != nil {
			return err
		}
		if pending.Pending {
			rebootNeeded = true
		}
		remaining := r.remaining()
		if !rebootNeeded && len(remaining) == 0 {
			return nil
		}
		if !rebootNeeded && !progressed {
			// Nothing can go in and nothing asks for a reboot: the
			// packages waiting for a servicing stack will not get one.
			for _, s := range remaining {
				s.result = resultFailed
				s.message = "needs a newer servicing stack (0x800F0823) and none of the given packages provided one"
			}
			return nil
		}
		if r.reboots >= r.cfg.MaxReboots {
			return fmt.Errorf("winbake-updates: max_reboots (%d) reached and Windows still needs a reboot; packages still pending: %s (pending-reboot reasons %v)",
				r.cfg.MaxReboots, pendingNames(r.states), pending.Reasons)
		}
		if err := r.reboot(ctx, pending); err != nil {
			return err
		}
	}
}

func kbSuffix(p *Package) string {
	if p.KB == "" {
		return ""
	}
	return ", " + p.KB
}

func msgSuffix(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

func pendingNames(states []*pkgState) string {
	var n []string
	for _, s := range states {
		if s.waitingForReboot || !(s.result == resultInstalled || s.result == resultAlready || s.result == resultNotApplicable) {
			n = append(n, s.pkg.Name)
		}
	}
	if len(n) == 0 {
		return "(none of the given packages; Windows itself keeps asking for a reboot)"
	}
	return strings.Join(n, ", ")
}

// remaining are the packages not finished yet.
func (r *installRun) remaining() []*pkgState {
	var out []*pkgState
	for _, s := range r.states {
		if !r.done(s) {
			out = append(out, s)
		}
	}
	return out
}

// ssuProgressed reports whether a servicing stack went in since s asked
// for one, so trying s again makes sense.
func (r *installRun) ssuProgressed(s *pkgState) bool {
	for _, t := range r.states {
		if t.pkg.Kind == guestcontract.KindServicingStack && (t.result == resultInstalled || t.result == resultAlready) && !t.waitingForReboot {
			return s.attempts <= t.attempts+len(r.states) // a new SSU is in; try once more
		}
	}
	return false
}

// install runs the agent's install verb, surviving lost answers: the
// journal tells whether an install whose answer was lost completed, and
// an install still running answers so. restart_timeout bounds a silent
// guest, install_timeout the whole install.
func (r *installRun) install(ctx context.Context, s *pkgState) (agent.InstallResult, error) {
	journal := fmt.Sprintf(`%s\journal\%s.%d.json`, r.cfg.GuestDirectory, s.pkg.SHA256[:16], s.attempts)
	args := []string{"install", s.guestPath, "--journal", journal}
	started := time.Now()
	silentSince := started
	for {
		var res agent.InstallResult
		left := r.cfg.InstallTimeout - time.Since(started)
		if left <= 0 {
			return agent.InstallResult{}, fmt.Errorf("installing %s: still not done after %s (install_timeout)", s.pkg.Name, r.cfg.InstallTimeout)
		}
		err := r.g.runOnceWithin(ctx, &res, left, "install_timeout", args...)
		switch {
		case guestcmd.IsTimeout(err):
			return res, fmt.Errorf("installing %s: %w", s.pkg.Name, err)
		case err == nil && res.InProgress:
			silentSince = time.Now()
			r.ui.Message(fmt.Sprintf("    %s: the earlier install is still running; waiting", s.pkg.Name))
		case err == nil:
			if res.FromJournal {
				r.ui.Message(fmt.Sprintf("    %s: the install finished while the connection was lost; not running it again", s.pkg.Name))
			}
			return res, nil
		case ctx.Err() != nil:
			return agent.InstallResult{}, ctx.Err()
		case !errors.Is(err, errTransport):
			return res, err
		default:
			r.ui.Message(fmt.Sprintf("    %s: lost the answer of the install (%v); asking again", s.pkg.Name, err))
		}
		if time.Since(silentSince) > r.cfg.RestartTimeout {
			return agent.InstallResult{}, fmt.Errorf("installing %s: no answer from the guest within %s (restart_timeout)", s.pkg.Name, r.cfg.RestartTimeout)
		}
		select {
		case <-ctx.Done():
			return agent.InstallResult{}, ctx.Err()
		case <-time.After(r.poll):
		}
		// A reboot in between (by Windows itself) is counted.
		if bt, err := r.g.bootTime(ctx); err == nil && bt.After(r.bootTime) {
			r.bootTime = bt
			r.observed++
			r.ui.Say("The guest rebooted by itself")
		}
	}
}

// record applies the agent's answer to the package's state.
func (r *installRun) record(s *pkgState, res agent.InstallResult) {
	s.outcome, s.exitCode = res.Result, res.ExitCode
	s.message = ""
	switch res.Result {
	case agent.Installed:
		s.result = resultInstalled
	case agent.InstalledRebootRequired, agent.RebootInitiated:
		s.result, s.waitingForReboot = resultInstalled, true
	case agent.AlreadyInstalled:
		s.result = resultAlready
	case agent.NotApplicable:
		s.result = resultNotApplicable
		s.message = "not applicable to this Windows"
	case agent.NeedsServicingStack:
		s.attempts++
		s.needsSSU = true
		s.message = "needs a newer servicing stack; retried after it"
		if !r.haveSSUToCome(s) {
			s.result = resultFailed
			s.message = "needs a newer servicing stack (0x800F0823) and none of the given packages provides one"
		}
	default:
		s.attempts++
		s.message = res.Error
		if s.attempts > r.cfg.Retries {
			s.result = resultFailed
		} else {
			s.retryAfterReboot = true
			s.message += fmt.Sprintf("; retried after a reboot (%d of %d retries left)", r.cfg.Retries-s.attempts+1, r.cfg.Retries)
		}
	}
}

// haveSSUToCome: a servicing stack among the packages is installed or
// still to be tried.
func (r *installRun) haveSSUToCome(s *pkgState) bool {
	if s.attempts > len(r.states)+1 {
		return false
	}
	for _, t := range r.states {
		if t != s && t.pkg.Kind == guestcontract.KindServicingStack && t.result != resultFailed && t.result != resultNotApplicable {
			return true
		}
	}
	return false
}

// reboot restarts the guest and waits until it is back and servicing is done.
func (r *installRun) reboot(ctx context.Context, pending agent.PendingReboot) error {
	r.reboots++
	reasons := "packages asked for it"
	if len(pending.Reasons) > 0 {
		reasons = strings.Join(pending.Reasons, ", ")
	}
	r.ui.Say(fmt.Sprintf("Rebooting (%d of at most %d): %s", r.reboots, r.cfg.MaxReboots, reasons))
	var rr agent.RestartResult
	if err := r.g.runOnce(ctx, &rr, "restart", "--reason", `"winbake-updates"`); err != nil && !errors.Is(err, errTransport) {
		return err
	} else if err == nil && !rr.OK {
		return fmt.Errorf("restarting the guest: %s", rr.Error)
	}
	return r.afterReboot(ctx, true)
}

// afterReboot waits for a new boot time, then for servicing to settle.
func (r *installRun) afterReboot(ctx context.Context, ours bool) error {
	bt, err := r.g.waitBootAfter(ctx, r.bootTime)
	if err != nil {
		return err
	}
	r.bootTime = bt
	r.observed++
	r.ui.Say(fmt.Sprintf("The guest is back (booted %s)", bt.Format(time.RFC3339)))
	for _, s := range r.states {
		if s.waitingForReboot {
			s.rebootsAfter++
		}
		s.retryAfterReboot = false
	}
	return r.waitServicing(ctx)
}

// waitServicing waits, bounded by servicing_timeout, until the Windows
// Modules Installer worker (TiWorker.exe) has exited and the pending-reboot
// signals are clear: Windows finishes servicing after the boot and clears
// them then. Signals still set at the end mean another reboot. A reboot
// Windows does by itself meanwhile (a package that needs two) is followed.
func (r *installRun) waitServicing(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.ServicingTimeout)
	saidBusy := false
	for {
		pr, err := r.g.pendingReboot(ctx)
		if err != nil {
			return err
		}
		bt, err := r.g.bootTime(ctx)
		if err != nil {
			return err
		}
		if bt.After(r.bootTime) {
			r.bootTime = bt
			r.observed++
			r.ui.Say("Windows rebooted by itself to finish servicing")
			deadline = time.Now().Add(r.cfg.ServicingTimeout)
			continue
		}
		if pr.ServicingBusy && !saidBusy {
			r.ui.Message("Waiting for the Windows Modules Installer worker (" + agent.ServicingWorker + ") to finish servicing")
			saidBusy = true
		}
		if !pr.Pending && !pr.ServicingBusy {
			for _, s := range r.states {
				s.waitingForReboot = false
			}
			return nil
		}
		if time.Now().After(deadline) {
			if pr.ServicingBusy {
				r.ui.Message(fmt.Sprintf("%s still runs after servicing_timeout (%s); going on", agent.ServicingWorker, r.cfg.ServicingTimeout))
			}
			if pr.Pending {
				r.ui.Message(fmt.Sprintf("Windows still reports a pending reboot (%v) after %s", pr.Reasons, r.cfg.ServicingTimeout))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.poll):
		}
	}
}
