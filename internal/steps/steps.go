// Package steps holds the helpers every component's multistep steps
// share: stopping a run on an error, telling in Cleanup whether the run
// failed, checking for a file, running a step sequence into one error,
// and sleeping until a context ends.
// It is a leaf: it imports no component, so builders, provisioners and
// post-processors can all use it.
package steps

import (
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Halt records err as the run's error, shows it, and stops the run.
func Halt(state multistep.StateBag, ui packersdk.Ui, err error) multistep.StepAction {
	state.Put("error", err)
	ui.Error(err.Error())
	return multistep.ActionHalt
}

// BuildFailed reports whether the run was cancelled or halted, so that
// Cleanup removes what Run created only when no artifact will use it.
func BuildFailed(state multistep.StateBag) bool {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	return cancelled || halted
}

// FileExists reports whether path can be stat'ed (a file, a directory, or
// a link to one).
func FileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
