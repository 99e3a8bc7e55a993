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

// afterExitGrace is how long the VM may take to power off after the sysprep
// command's WinRM connection ended (it ends when Windows goes down) before
// the end counts as sysprep failing.
const afterExitGrace = 2 * time.Minute

// stepSysprep checks that Windows is an installed, not generalized image,
// writes the answer file (cloudbase-init's when it was installed), removes
// the uploaded agent, and runs
// `sysprep /generalize /oobe /shutdown /quiet /unattend:<file>`. The
// command never returns over WinRM: sysprep powers Windows off when it
// succeeded, so the VM powering off within Timeout is the success; sysprep
// ending while the VM runs is a failure, reported with setuperr.log.
//
// Uses state: "ui", "communicator", StateDriver, stateAgentUploaded,
// stateCloudbaseInit.
type stepSysprep struct {
	Timeout time.Duration
	// ExitGrace replaces afterExitGrace when set.
	ExitGrace time.Duration
}

func (s *stepSysprep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	driver := state.Get(wbcommon.StateDriver).(wbcommon.Driver)

	r, err := runScript(ctx, comm, "image-state.ps1", nil)
	if err != nil {
		return halt(state, ui, fmt.Errorf("reading the image state: %w", err))
	}
	if st := strings.TrimSpace(r.Stdout); st != ImageStateComplete {
		return halt(state, ui, fmt.Errorf("the image state is %q, not %s: sysprep runs on an installed Windows that was not generalized", st, ImageStateComplete))
	}

	unattend := CloudbaseInitUnattend
	if ci, _ := state.Get(stateCloudbaseInit).(bool); !ci {
		text, err := renderGuestFile("unattend.xml", nil)
		if err != nil {
			return halt(state, ui, err)
		}
		unattend = generatedUnattend
		if err := comm.Upload(unattend, strings.NewReader(strings.ReplaceAll(text, "\n", "\r\n")), nil); err != nil {
			return halt(state, ui, fmt.Errorf("writing the answer file %s: %w", unattend, err))
		}
	}
	if uploaded, _ := state.Get(stateAgentUploaded).(bool); uploaded {
		if _, err := runScript(ctx, comm, "remove-file.ps1", map[string]string{"Path": AgentPath}); err != nil {
			return halt(state, ui, fmt.Errorf("removing winbake-agent from the guest: %w", err))
		}
	}

	command := fmt.Sprintf(`%s /generalize /oobe /shutdown /quiet /unattend:"%s"`, sysprepExe, unattend)
	ui.Say("Running " + command)
	start := time.Now()
	cmd := &packersdk.RemoteCmd{Command: command}
	exited := make(chan int, 1)
	if err := comm.Start(ctx, cmd); err != nil {
		// The connection drops when Windows goes down, which may be
		// before the command request is answered; the VM powering off
		// (or not) below decides.
		log.Printf("starting sysprep: %v", err)
		exited <- -1
	} else {
		go func() { exited <- cmd.Wait() }()
	}

	waitCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	off := make(chan error, 1)
	go func() { off <- driver.WaitVM(waitCtx) }()

	for {
		select {
		case err := <-off:
			switch {
			case err == nil:
				ui.Say(fmt.Sprintf("sysprep generalized Windows and powered the VM off after %s", time.Since(start).Round(time.Second)))
				return multistep.ActionContinue
			case ctx.Err() != nil:
				return halt(state, ui, ctx.Err())
			case errors.Is(err, context.DeadlineExceeded):
				_ = driver.StopVM()
				return halt(state, ui, fmt.Errorf("timeout: sysprep did not power the VM off within %s; QEMU was killed and nothing is kept (raise timeout for slow hosts)", s.Timeout))
			default:
				return halt(state, ui, fmt.Errorf("waiting for the VM to power off: %w", err))
			}
		case status := <-exited:
			exited = nil
			log.Printf("the sysprep command ended with %d after %s", status, time.Since(start).Round(time.Second))
			// The connection ends when Windows shuts down; if the VM is
			// still up a while later, sysprep gave up.
			wait := afterExitGrace
			if s.ExitGrace > 0 {
				wait = s.ExitGrace
			}
			grace := time.NewTimer(wait)
			select {
			case err := <-off:
				grace.Stop()
				off <- err
				continue
			case <-grace.C:
			}
			reason := s.sysprepErrors(ctx, comm)
			return halt(state, ui, fmt.Errorf("sysprep ended with exit code %d and Windows did not power off: %s", status, reason))
		}
	}
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
