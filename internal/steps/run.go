package steps

import (
	"context"
	"errors"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// Run runs steps in order with a multistep.BasicRunner and returns
// Failure(state, what): nil when every step continued.
func Run(ctx context.Context, state multistep.StateBag, steps []multistep.Step, what string) error {
	(&multistep.BasicRunner{Steps: steps}).Run(ctx, state)
	return Failure(state, what)
}

// Failure returns why a finished run stopped early: the error a step put
// in state, else "<what> was cancelled" when the run's context ended
// (Ctrl-C), else "<what> was halted" when a step halted without an error;
// nil when the run went through. what names the run in those messages
// ("build", "sysprep", "verification").
func Failure(state multistep.StateBag, what string) error {
	if err, ok := state.GetOk("error"); ok {
		return err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return errors.New(what + " was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return errors.New(what + " was halted")
	}
	return nil
}
