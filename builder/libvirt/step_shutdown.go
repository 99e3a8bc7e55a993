package libvirt

import (
	"context"
	"fmt"
	"log"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepShutdown runs `shutdown /s /t 0` over the communicator (without
// one, it waits for the guest to power itself off) and polls the domain
// state until it is shut off. After Timeout the domain is destroyed and
// the build fails: a disk whose Windows did not shut down cleanly is no
// golden image.
//
// Uses state: "ui", stateDriver, stateDomainName, "communicator"
// (optional).
type stepShutdown struct {
	Timeout time.Duration
	// PollInterval defaults to 1 s.
	PollInterval time.Duration
}

func (s *stepShutdown) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(stateDriver).(Driver)
	name := state.Get(stateDomainName).(string)
	qemuvm.ExpectVMExit(state)
	if comm, ok := state.Get("communicator").(packersdk.Communicator); ok && comm != nil {
		ui.Say("Shutting Windows down: " + wbcommon.ShutdownCommand)
		if err := wbcommon.RunShutdownCommand(ctx, comm, s.Timeout); err != nil {
			// The connection may drop while Windows goes down; the
			// domain state below is what counts.
			log.Printf("%q: %v", wbcommon.ShutdownCommand, err)
		}
	} else {
		ui.Say("No communicator: waiting for the domain to power itself off")
	}
	interval := s.PollInterval
	if interval == 0 {
		interval = time.Second
	}
	start := time.Now()
	deadline := start.Add(s.Timeout)
	for {
		st, err := driver.DomainState(name)
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("waiting for domain %s to power off: %w", name, err))
		}
		if st == golibvirt.DomainShutoff {
			ui.Say(fmt.Sprintf("The VM powered off after %s", time.Since(start).Round(time.Second)))
			return multistep.ActionContinue
		}
		if st == golibvirt.DomainCrashed {
			return steps.Halt(state, ui, fmt.Errorf("domain %s crashed while shutting down", name))
		}
		if time.Now().After(deadline) {
			ui.Error(fmt.Sprintf("The VM did not power off within shutdown_timeout (%s); destroying the domain", s.Timeout))
			_ = driver.Destroy(name)
			return steps.Halt(state, ui, fmt.Errorf("shutdown_timeout: Windows did not power off within %s after %q; the domain was destroyed", s.Timeout, wbcommon.ShutdownCommand))
		}
		if !steps.Sleep(ctx, interval) {
			return steps.Halt(state, ui, ctx.Err())
		}
	}
}

// Cleanup has nothing to undo; stepStartDomain's Cleanup destroys a
// domain that still runs.
func (s *stepShutdown) Cleanup(multistep.StateBag) {}
