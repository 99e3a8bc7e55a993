package sysprep

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Image states Windows Setup records in
// HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State.
const (
	ImageStateComplete    = "IMAGE_STATE_COMPLETE"
	ImageStateGeneralized = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
)

// Paths in the guest.
const (
	sysprepExe        = `C:\Windows\System32\Sysprep\sysprep.exe`
	generatedUnattend = guestTemp + `\winbake-sysprep-unattend.xml`
	sysprepErrLog     = `C:\Windows\System32\Sysprep\Panther\setuperr.log`
)

// stepSysprep checks that Windows is an installed, not generalized image,
// writes the answer file (cloudbase-init's when it was installed), removes
// the uploaded agent, and runs
// `sysprep /generalize /oobe /quit /quiet /unattend:<file>`. It then reads
// the image state Windows Setup records until it is
// IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE (sysprep.exe, a GUI program, may
// return before it has finished), so success is what Windows itself
// reports, and only then powers Windows off and waits for the VM to stop,
// all within Timeout.
//
// A failed run is read in sysprep's setupact.log (step_appx_blockers.go):
// when it names Appx packages installed for a user but not provisioned,
// which it had not named before, they are removed for all users (and their
// provisioned copies) and sysprep runs again; anything else fails with the
// run's error lines (setuperr.log when the run left none in setupact.log).
//
// Uses state: "ui", "communicator", StateDriver, stateAgentUploaded,
// stateCloudbaseInit, stateRemovedAppx.
// Produces state: stateRemovedAppx (with the packages sysprep named).
type stepSysprep struct {
	Timeout time.Duration
	// Poll is how often the image state is read (default 5s).
	Poll time.Duration
}

func (s *stepSysprep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)

	if st, err := imageStateOf(ctx, comm); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("reading the image state: %w", err))
	} else if st != ImageStateComplete {
		return steps.Halt(state, ui, fmt.Errorf("the image state is %q, not %s: sysprep runs on an installed Windows that was not generalized", st, ImageStateComplete))
	}

	unattend := CloudbaseInitUnattend
	if ci, _ := state.Get(stateCloudbaseInit).(bool); !ci {
		text, err := renderGuestFile("unattend.xml", nil)
		if err != nil {
			return steps.Halt(state, ui, err)
		}
		unattend = generatedUnattend
		if err := guestcmd.Upload(ctx, comm, unattend, strings.NewReader(strings.ReplaceAll(text, "\n", "\r\n")), nil, uploadTimeout, uploadLimit); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("writing the answer file %s: %w", unattend, err))
		}
	}
	if uploaded, _ := state.Get(stateAgentUploaded).(bool); uploaded {
		if _, err := runScript(ctx, comm, "remove-file.ps1", map[string]string{"Path": guestcontract.AgentPath}); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("removing winbake-agent from the guest: %w", err))
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	timedOut := func(what string) multistep.StepAction {
		if ctx.Err() != nil {
			return steps.Halt(state, ui, ctx.Err())
		}
		qemuvm.ExpectVMExit(state)
		_ = driver.StopVM()
		return steps.Halt(state, ui, fmt.Errorf("timeout: sysprep did not %s within %s; QEMU was killed and nothing is kept (raise timeout for slow hosts)", what, s.Timeout))
	}

	command := fmt.Sprintf(`%s /generalize /oobe /quit /quiet /unattend:"%s"`, sysprepExe, unattend)
	removed, _ := state.Get(stateRemovedAppx).([]string)
	var named []string // the packages sysprep named and winbake removed
	for run := 1; ; run++ {
		before, err := readSysprepLog(waitCtx, comm)
		if waitCtx.Err() != nil {
			return timedOut("finish")
		}
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("reading %s: %w", sysprepActLog, err))
		}
		ui.Say("Running " + command)
		r, err := runGuestUntil(waitCtx, comm, command)
		switch {
		case waitCtx.Err() != nil:
			return timedOut("finish")
		case err != nil:
			return steps.Halt(state, ui, fmt.Errorf("running sysprep: %w", err))
		}
		imageState, failed, err := s.waitOutcome(waitCtx, comm, r.ExitStatus, before)
		switch {
		case waitCtx.Err() != nil:
			return timedOut("generalize Windows")
		case err != nil:
			return steps.Halt(state, ui, err)
		case failed == nil:
			state.Put(stateRemovedAppx, removed)
			ui.Say(fmt.Sprintf("Windows reports %s after %s; powering it off", ImageStateGeneralized, time.Since(start).Round(time.Second)))
			return s.powerOff(ctx, waitCtx, state, timedOut, start)
		}
		// When sysprep failed in its validation, before changing anything
		// (the image state is still IMAGE_STATE_COMPLETE), and names Appx
		// packages it has not named before, remove them and run it again.
		// An image left IMAGE_STATE_UNDEPLOYABLE failed in a phase and
		// "must be reinstalled" (Microsoft, "Windows Setup States").
		fresh := len(failed.Blockers) > 0 && run < maxSysprepRuns && imageState == ImageStateComplete
		for _, b := range failed.Blockers {
			fresh = fresh && !contains(named, b)
		}
		if !fresh {
			why := ""
			if imageState != ImageStateComplete {
				why = " (sysprep failed past its validation; Windows Setup States says an image in that state must be reinstalled, so winbake does not run sysprep again)"
			} else if len(failed.Blockers) > 0 && run >= maxSysprepRuns {
				why = fmt.Sprintf(" (sysprep ran %d times, naming another Appx package each time)", run)
			} else if len(failed.Blockers) > 0 {
				why = fmt.Sprintf(" (it names %s again after winbake removed it)", strings.Join(failed.Blockers, ", "))
			}
			return steps.Halt(state, ui, fmt.Errorf("sysprep ended with exit code %d and Windows is not generalized (image state %s)%s; %s",
				r.ExitStatus, imageState, why, failed.Excerpt))
		}
		for _, b := range failed.Blockers {
			if err := removeAppxBlocker(waitCtx, ui, comm, b); err != nil {
				if waitCtx.Err() != nil {
					return timedOut("finish")
				}
				return steps.Halt(state, ui, err)
			}
			named = append(named, b)
			removed = append(removed, b)
		}
		state.Put(stateRemovedAppx, removed)
	}
}

// waitOutcome reads the image state until Windows is generalized (failed
// nil) or sysprep's run failed: it exited non-zero, or setupact.log shows
// a new run that failed (sysprep.exe may return before it has finished,
// so a zero exit is not yet success). before is setupact.log as it was
// before this run: sysprep appends to it.
func (s *stepSysprep) waitOutcome(ctx context.Context, comm packersdk.Communicator, exitStatus int, before string) (imageState string, failed *sysprepRun, err error) {
	poll := s.Poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	for {
		st, err := imageStateOf(ctx, comm)
		if ctx.Err() != nil {
			return st, nil, ctx.Err()
		}
		if err != nil {
			return st, nil, fmt.Errorf("reading the image state after sysprep: %w", err)
		}
		if st == ImageStateGeneralized {
			return st, nil, nil
		}
		log, err := readSysprepLog(ctx, comm)
		if ctx.Err() != nil {
			return st, nil, ctx.Err()
		}
		if err != nil {
			return st, nil, fmt.Errorf("reading %s: %w", sysprepActLog, err)
		}
		run := lastSysprepRun(log)
		// A run of its own: one that starts after the old log, or a log
		// that is not the old one continued.
		newRun := run.Text != "" && (run.Start >= len(strings.ReplaceAll(before, "\r\n", "\n")) || !strings.HasPrefix(log, before))
		switch {
		case newRun && (run.Failed || exitStatus != 0):
			run.Excerpt = sysprepActLog + ":\n" + run.Excerpt
			return st, &run, nil
		case exitStatus != 0:
			// No run of its own in setupact.log: quote setuperr.log.
			return st, &sysprepRun{Excerpt: s.sysprepErrors(ctx, comm)}, nil
		}
		select {
		case <-ctx.Done():
			return st, nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// powerOff shuts Windows down once it is generalized and waits for the VM
// to stop.
func (s *stepSysprep) powerOff(ctx, waitCtx context.Context, state multistep.StateBag, timedOut func(string) multistep.StepAction, start time.Time) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	// The connection may end before shutdown.exe answers; the VM stopping
	// is what counts.
	qemuvm.ExpectVMExit(state)
	if r, err := runGuestUntil(waitCtx, comm, "shutdown /s /t 0"); err != nil {
		log.Printf("shutdown: %v", err)
	} else if r.ExitStatus != 0 {
		return steps.Halt(state, ui, fmt.Errorf("shutdown /s /t 0 exited with %d: %s", r.ExitStatus, r.errorText()))
	}
	if err := driver.WaitVM(waitCtx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return timedOut("power the VM off")
		}
		return steps.Halt(state, ui, fmt.Errorf("waiting for the VM to power off: %w", err))
	}
	ui.Say(fmt.Sprintf("sysprep generalized Windows and powered the VM off after %s", time.Since(start).Round(time.Second)))
	return multistep.ActionContinue
}

// imageStateOf reads the image state Windows Setup records.
func imageStateOf(ctx context.Context, comm packersdk.Communicator) (string, error) {
	r, err := runScript(ctx, comm, "image-state.ps1", nil)
	return strings.TrimSpace(r.Stdout), err
}

// runGuestUntil runs command within ctx's deadline (the sysprep
// timeout): a command that hangs does not hold the build past it.
func runGuestUntil(ctx context.Context, comm packersdk.Communicator, command string) (guestResult, error) {
	timeout := guestCommandTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return runGuestWithin(ctx, comm, command, timeout, "timeout")
}

// sysprepErrors reads setuperr.log from the guest.
func (s *stepSysprep) sysprepErrors(ctx context.Context, comm packersdk.Communicator) string {
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r, err := runGuest(rctx, comm, "type "+sysprepErrLog)
	if err != nil || r.ExitStatus != 0 {
		return fmt.Sprintf("%s could not be read (%v)", sysprepErrLog, err)
	}
	return sysprepErrLog + ":\n" + strings.TrimSpace(r.Stdout)
}

// Cleanup has nothing to undo; StepRunVM's Cleanup kills a VM that still
// runs.
func (s *stepSysprep) Cleanup(multistep.StateBag) {}
