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

func communicatorOf(state multistep.StateBag) packersdk.Communicator {
	return state.Get("communicator").(packersdk.Communicator)
}
