package sysprep

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepCheckPending asks winbake-agent whether servicing waits for a
// reboot, and refuses to generalize a half-patched image: sysprep would
// fail on it, or worse, race the pending updates.
//
// Uses state: "ui", "communicator".
type stepCheckPending struct{}

func (s *stepCheckPending) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	r, err := runGuest(ctx, communicatorOf(state), guestcontract.AgentPath+" pending-reboot")
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("winbake-agent pending-reboot: %w", err))
	}
	pending, err := parsePendingReboot(r)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	if len(pending.SoftReasons) > 0 {
		ui.Say("Weak pending-reboot signals, not counted: " + strings.Join(pending.SoftReasons, ", "))
	}
	if pending.Pending {
		return steps.Halt(state, ui, fmt.Errorf("the golden image has servicing pending a reboot (%s): sysprep must not run on a half-patched image; "+
			"let the build restart until nothing is pending (winbake-updates does), then build the golden image again", strings.Join(pending.Reasons, ", ")))
	}
	ui.Say("Nothing is pending: no reboot awaited by servicing")
	return multistep.ActionContinue
}

func parsePendingReboot(r guestResult) (agent.PendingReboot, error) {
	var res agent.PendingRebootResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &res); err != nil {
		return agent.PendingReboot{}, fmt.Errorf("winbake-agent pending-reboot answered %q (exit %d, %s): %v", r.Stdout, r.ExitStatus, strings.TrimSpace(r.Stderr), err)
	}
	if !res.OK {
		return agent.PendingReboot{}, fmt.Errorf("winbake-agent pending-reboot failed: %s", res.Error)
	}
	return res.PendingReboot, nil
}

func (s *stepCheckPending) Cleanup(multistep.StateBag) {}
