package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepWaitFirstBoot follows the serial console until the first boot has
// got as far as it will: cloudbase-init finished its plugins, or the
// stand-in guest reports its services up. A guest that powers off or
// outlasts timeout stops the wait; the checks then report what is missing.
//
// Uses state: "ui", StateDriver, stateInstance.
type stepWaitFirstBoot struct {
	Timeout time.Duration
	Poll    time.Duration
	// Finished tells from the console log that the first boot is done
	// (Linux: cloud-init's final message); nil: cloudbase-init's.
	Finished func(log string) bool
	// What names what the wait is for in the message.
	What string
}

func (s *stepWaitFirstBoot) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	inst := state.Get(stateInstance).(*instance)
	poll := s.Poll
	if poll == 0 {
		// A look is one read of a local file: the wait ends at most half
		// a second after the console says the boot is done.
		poll = 500 * time.Millisecond
	}
	what := s.What
	if what == "" {
		what = "specialize, OOBE, cloudbase-init"
	}
	ui.Say(fmt.Sprintf("Waiting up to %s for the first boot (%s)", s.Timeout, what))
	deadline := time.Now().Add(s.Timeout)
	exited := make(chan error, 1)
	go func() { exited <- driver.WaitVM(ctx) }()
	logged := 0
	for {
		b, _ := os.ReadFile(filepath.Join(inst.Dir, qemuvm.SerialLogName))
		if s.Finished != nil {
			if s.Finished(string(b)) {
				return multistep.ActionContinue
			}
		}
		f := readSerial(string(b))
		if n := len(f.Plugins); n > logged {
			ui.Message(fmt.Sprintf("cloudbase-init plugins so far: %v", f.Plugins))
			logged = n
		}
		if s.Finished == nil && (f.PluginsDone > 0 || f.Ready) {
			return multistep.ActionContinue
		}
		select {
		case <-ctx.Done():
			return steps.Halt(state, ui, ctx.Err())
		case err := <-exited:
			ui.Message(fmt.Sprintf("The VM stopped during its first boot (%v)", err))
			return multistep.ActionContinue
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			ui.Message(fmt.Sprintf("The first boot did not finish within %s", s.Timeout))
			return multistep.ActionContinue
		}
	}
}

func (s *stepWaitFirstBoot) Cleanup(multistep.StateBag) {}
