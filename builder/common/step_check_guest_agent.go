package common

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// QemuGuestAgentService is the service name of the QEMU guest agent for
// Windows (qemu-ga, installed by virtio-win's guest tools).
const QemuGuestAgentService = "QEMU-GA"

// StepCheckGuestAgent asks the guest, before it shuts down, whether the
// QEMU guest agent service is installed, for the manifest's
// `qemu_guest_agent` (from which winbake-glance sets
// hw_qemu_guest_agent). A failed check fails the build rather than guess.
//
// Uses state: "ui", "communicator" (optional: without one, or with
// communicator "none", nothing is checked and the manifest says nothing).
// Produces state: StateQemuGuestAgent.
type StepCheckGuestAgent struct {
	// CommunicatorType is the build's communicator type; "none" reads
	// nothing.
	CommunicatorType string
}

func (s *StepCheckGuestAgent) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm, ok := state.Get("communicator").(packersdk.Communicator)
	if !ok || comm == nil || s.CommunicatorType == "none" {
		return multistep.ActionContinue
	}
	installed, err := serviceInstalled(ctx, comm, QemuGuestAgentService)
	if err != nil {
		err = fmt.Errorf("checking for the QEMU guest agent service %s for the manifest: %w", QemuGuestAgentService, err)
		return steps.Halt(state, ui, err)
	}
	if installed {
		ui.Say("The QEMU guest agent service " + QemuGuestAgentService + " is installed")
	} else {
		ui.Say("The QEMU guest agent service " + QemuGuestAgentService + " is not installed")
	}
	state.Put(StateQemuGuestAgent, installed)
	return multistep.ActionContinue
}

func (s *StepCheckGuestAgent) Cleanup(multistep.StateBag) {}

func serviceInstalled(ctx context.Context, comm packersdk.Communicator, name string) (bool, error) {
	out, err := runGuestScript(ctx, comm, "service-installed.ps1", struct{ Key string }{`HKLM:\SYSTEM\CurrentControlSet\Services\` + name})
	if err != nil {
		return false, err
	}
	if out.ExitStatus != 0 {
		return false, fmt.Errorf("PowerShell exited with %d: %s", out.ExitStatus, out.errorText())
	}
	switch strings.TrimSpace(out.Stdout) {
	case "installed":
		return true, nil
	case "absent":
		return false, nil
	}
	return false, fmt.Errorf("unexpected answer %q", strings.TrimSpace(out.Stdout))
}
