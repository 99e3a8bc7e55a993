package sysprep

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"

	"github.com/winbake/packer-plugin-winbake/internal/agent/agentbin"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepEnsureAgent makes sure winbake-agent is in the guest: images built
// with winbake-updates have it; otherwise it is uploaded, and removed again
// before sysprep (stepSysprep), so the image keeps nothing of winbake's.
//
// Uses state: "ui", "communicator".
// Produces state: stateAgentUploaded.
type stepEnsureAgent struct{}

func (s *stepEnsureAgent) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	r, err := runScript(ctx, comm, "agent-present.ps1", map[string]string{"Path": guestcontract.AgentPath})
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("looking for winbake-agent in the guest: %w", err))
	}
	if strings.TrimSpace(r.Stdout) == "True" {
		state.Put(stateAgentUploaded, false)
		return multistep.ActionContinue
	}
	exe, err := agentbin.Windows()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	ui.Say("Uploading winbake-agent to " + guestcontract.AgentPath)
	start := time.Now()
	if err := guestcmd.Upload(ctx, comm, guestcontract.AgentPath, bytes.NewReader(exe), nil, uploadTimeout, uploadLimit); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("uploading winbake-agent: %w", err))
	}
	ui.Say(fmt.Sprintf("winbake-agent uploaded in %s", time.Since(start).Round(time.Second)))
	state.Put(stateAgentUploaded, true)
	return multistep.ActionContinue
}

// Cleanup has nothing to undo: the guest's disk is discarded on failure.
func (s *stepEnsureAgent) Cleanup(multistep.StateBag) {}
