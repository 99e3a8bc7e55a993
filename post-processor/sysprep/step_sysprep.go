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

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
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
// all within Timeout. Sysprep failing is reported with setuperr.log.
//
// Uses state: "ui", "communicator", StateDriver, stateAgentUploaded,
// stateCloudbaseInit.
type stepSysprep struct {
	Timeout time.Duration
	// Poll is how often the image state is read (default 5s).
	Poll time.Duration
}

func (s *stepSysprep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	driver := state.Get(wbcommon.StateDriver).(wbcommon.Driver)

	if st, err := imageState(ctx, comm); err != nil {
		return halt(state, ui, fmt.Errorf("reading the image state: %w", err))
	} else if st != ImageStateComplete {
		return halt(state, ui, fmt.Errorf("the image state is %q, not %s: sysprep runs on an installed Windows that was not generalized", st, ImageStateComplete))
	}

	unattend := CloudbaseInitUnattend
	if ci, _ := state.Get(stateCloudbaseInit).(bool); !ci {
		text, err := renderGuestFile("unattend.xml", nil)
		if err != nil {
			return halt(state, ui, err)
		}
		unattend = generatedUnattend
		if err := guestcmd.Upload(ctx, comm, unattend, strings.NewReader(strings.ReplaceAll(text, "\n", "\r\n")), nil, uploadTimeout, uploadLimit); err != nil {
			return halt(state, ui, fmt.Errorf("writing the answer file %s: %w", unattend, err))
		}
	}
	if uploaded, _ := state.Get(stateAgentUploaded).(bool); uploaded {
		if _, err := runScript(ctx, comm, "remove-file.ps1", map[string]string{"Path": AgentPath}); err != nil {
			return halt(state, ui, fmt.Errorf("removing winbake-agent from the guest: %w", err))
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	timedOut := func(what string) multistep.StepAction {
		if ctx.Err() != nil {
			return halt(state, ui, ctx.Err())
		}
		wbcommon.ExpectVMExit(state)
		_ = driver.StopVM()
		return halt(state, ui, fmt.Errorf("timeout: sysprep did not %s within %s; QEMU was killed and nothing is kept (raise timeout for slow hosts)", what, s.Timeout))
	}

	command := fmt.Sprintf(`%s /generalize /oobe /quit /quiet /unattend:"%s"`, sysprepExe, unattend)
	ui.Say("Running " + command)
	r, err := s.runGuestUntil(waitCtx, comm, command)
	switch {
	case waitCtx.Err() != nil:
		return timedOut("finish")
	case err != nil:
		return halt(state, ui, fmt.Errorf("running sysprep: %w", err))
	}
	poll := s.Poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	for {
		st, err := imageState(waitCtx, comm)
		if waitCtx.Err() != nil {
			return timedOut("generalize Windows")
		}
		if err != nil {
			return halt(state, ui, fmt.Errorf("reading the image state after sysprep: %w", err))
		}
		if st == ImageStateGeneralized {
			break
		}
		if r.ExitStatus != 0 {
			return halt(state, ui, fmt.Errorf("sysprep ended with exit code %d and Windows is not generalized (image state %s): %s", r.ExitStatus, st, s.sysprepErrors(ctx, comm)))
		}
		select {
		case <-waitCtx.Done():
			return timedOut("generalize Windows")
		case <-time.After(poll):
		}
	}
	ui.Say(fmt.Sprintf("Windows reports %s after %s; powering it off", ImageStateGeneralized, time.Since(start).Round(time.Second)))

	// The connection may end before shutdown.exe answers; the VM stopping
	// is what counts.
	wbcommon.ExpectVMExit(state)
	if r, err := s.runGuestUntil(waitCtx, comm, "shutdown /s /t 0"); err != nil {
		log.Printf("shutdown: %v", err)
	} else if r.ExitStatus != 0 {
		return halt(state, ui, fmt.Errorf("shutdown /s /t 0 exited with %d: %s", r.ExitStatus, r.errorText()))
	}
	if err := driver.WaitVM(waitCtx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return timedOut("power the VM off")
		}
		return halt(state, ui, fmt.Errorf("waiting for the VM to power off: %w", err))
	}
	ui.Say(fmt.Sprintf("sysprep generalized Windows and powered the VM off after %s", time.Since(start).Round(time.Second)))
	return multistep.ActionContinue
}

// imageState reads the image state Windows Setup records.
func imageState(ctx context.Context, comm packersdk.Communicator) (string, error) {
	r, err := runScript(ctx, comm, "image-state.ps1", nil)
	return strings.TrimSpace(r.Stdout), err
}

// runGuestUntil runs command within s.Timeout, ctx carrying the deadline
// of the whole sysprep.
func (s *stepSysprep) runGuestUntil(ctx context.Context, comm packersdk.Communicator, command string) (guestResult, error) {
	return runGuestWithin(ctx, comm, command, s.Timeout, "timeout")
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
