package libvirt

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepBootCommand waits boot_wait after the domain started, then types
// the boot command through libvirt's send-key (Linux keycodes), which
// works on remote hypervisors without VNC.
//
// Uses state: "ui", stateDriver, stateDomainName.
type stepBootCommand struct {
	BootWait time.Duration
	Keys     []wbcommon.BootKey
	// TCGKeys, when set, replace Keys for a domain without KVM: under TCG
	// the firmware shows the install media's key prompt much later.
	TCGKeys []wbcommon.BootKey
	// KeyInterval is the pause between keys (default 100 ms).
	KeyInterval time.Duration
}

func (s *stepBootCommand) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	keys := s.Keys
	if accel, _ := state.Get(qemuvm.StateAccelerator).(string); accel != "kvm" && s.TCGKeys != nil {
		keys = s.TCGKeys
	}
	if len(keys) == 0 {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(stateDriver).(Driver)
	name := state.Get(stateDomainName).(string)
	interval := s.KeyInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	ui.Say(fmt.Sprintf("Waiting %s, then typing the boot command", s.BootWait))
	if !sleep(ctx, s.BootWait) {
		return steps.Halt(state, ui, ctx.Err())
	}
	for _, k := range keys {
		if k.Wait > 0 {
			if !sleep(ctx, k.Wait) {
				return steps.Halt(state, ui, ctx.Err())
			}
			continue
		}
		if err := driver.SendKeys(name, keycodes(k.QCodes)); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("boot_command: %w", err))
		}
		if !sleep(ctx, interval) {
			return steps.Halt(state, ui, ctx.Err())
		}
	}
	return multistep.ActionContinue
}

// Cleanup has nothing to undo.
func (s *stepBootCommand) Cleanup(multistep.StateBag) {}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
