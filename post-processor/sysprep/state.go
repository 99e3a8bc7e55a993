package sysprep

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// State keys of this post-processor's steps.
const (
	stateInput         = "sysprep_input"          // *inputImage
	stateAgentUploaded = "sysprep_agent_uploaded" // bool: remove it before sysprep
	stateRemovedAppx   = "sysprep_removed_appx"   // []string
	stateCloudbaseInit = "sysprep_cloudbase_init" // bool
	stateArtifact      = "artifact"               // *Artifact
)

// failed reports whether the run was cancelled or halted, so that Cleanup
// removes what Run created only when no artifact will use it.
func failed(state multistep.StateBag) bool {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	return cancelled || halted
}

func halt(state multistep.StateBag, ui packersdk.Ui, err error) multistep.StepAction {
	state.Put("error", err)
	ui.Error(err.Error())
	return multistep.ActionHalt
}

func communicatorOf(state multistep.StateBag) packersdk.Communicator {
	return state.Get("communicator").(packersdk.Communicator)
}
