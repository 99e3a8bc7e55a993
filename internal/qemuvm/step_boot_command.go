package qemuvm

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// CDBootWindow bounds UntilCDBoot: space is pressed once a second until
// After has passed since the console showed OVMF starting the CD's boot
// loader, and never longer than Max. It must stop before Setup restarts
// the machine, when the same prompt would boot the CD again.
var CDBootWindow = struct{ After, Max time.Duration }{After: 10 * time.Second, Max: 5 * time.Minute}

// BootKeySender sends one chord of QMP key names (ParseBootCommand's) to
// the VM: QEMU's Driver through QMP send-key, the libvirt builder through
// libvirt's send-key.
type BootKeySender interface {
	SendKeys(ctx context.Context, qcodes ...string) error
}

// StepBootCommand waits boot_wait after the VM started, then types the
// boot command.
//
// Uses state: "ui", StateAccelerator, StateDriver (unless Sender is set),
// StateSerialConsole (with UntilCDBoot).
type StepBootCommand struct {
	BootWait time.Duration
	Keys     []BootKey
	// TCGKeys, when set, replace Keys for a VM without KVM
	// (StateAccelerator), which reaches the boot prompt much later.
	TCGKeys []BootKey
	// KeyInterval is the pause between keys (default 100 ms).
	KeyInterval time.Duration
	// UntilCDBoot, under TCG with the serial console followed
	// (StateSerialConsole), replaces TCGKeys by space once a second until
	// CDBootWindow.After past the firmware starting the CD's boot loader.
	UntilCDBoot bool
	// Sender finds what sends the keys; nil: the Driver in StateDriver.
	Sender func(multistep.StateBag) BootKeySender
}

// underTCG reports whether the VM runs without KVM: the accelerator is
// "tcg" for QEMU run by winbake, "qemu" for a libvirt domain.
func underTCG(state multistep.StateBag) bool {
	accel, _ := state.Get(StateAccelerator).(string)
	return accel != AccelKVM
}

func (s *StepBootCommand) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	keys := s.Keys
	tcg := underTCG(state)
	if tcg && s.TCGKeys != nil {
		keys = s.TCGKeys
	}
	if len(keys) == 0 {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	var sender BootKeySender
	if s.Sender != nil {
		sender = s.Sender(state)
	} else {
		sender = state.Get(StateDriver).(Driver)
	}
	interval := s.KeyInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	ui.Say(fmt.Sprintf("Waiting %s, then typing the boot command", s.BootWait))
	if !steps.Sleep(ctx, s.BootWait) {
		return steps.Halt(state, ui, ctx.Err())
	}
	console, followed := state.Get(StateSerialConsole).(*SerialConsole)
	if s.UntilCDBoot && tcg && followed {
		return s.untilCDBoot(ctx, state, ui, sender, console)
	}
	for _, k := range keys {
		if k.Wait > 0 {
			if !steps.Sleep(ctx, k.Wait) {
				return steps.Halt(state, ui, ctx.Err())
			}
			continue
		}
		if err := sender.SendKeys(ctx, k.QCodes...); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("boot_command: %w", err))
		}
		if !steps.Sleep(ctx, interval) {
			return steps.Halt(state, ui, ctx.Err())
		}
	}
	return multistep.ActionContinue
}

// untilCDBoot presses space once a second until the firmware has started
// the CD's boot loader and CDBootWindow.After has passed.
func (s *StepBootCommand) untilCDBoot(ctx context.Context, state multistep.StateBag, ui packersdk.Ui, sender BootKeySender, console *SerialConsole) multistep.StepAction {
	start := time.Now()
	var started time.Time
	for time.Since(start) < CDBootWindow.Max {
		if started.IsZero() && console.CDBootStarts() > 0 {
			started = time.Now()
			ui.Say(fmt.Sprintf("The firmware started the CD's boot loader after %s; pressing space for %s more", started.Sub(start).Round(time.Second), CDBootWindow.After))
		}
		if !started.IsZero() && time.Since(started) >= CDBootWindow.After {
			return multistep.ActionContinue
		}
		if err := sender.SendKeys(ctx, "spc"); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("boot_command: %w", err))
		}
		if !steps.Sleep(ctx, time.Second) {
			return steps.Halt(state, ui, ctx.Err())
		}
	}
	ui.Say(fmt.Sprintf("The serial console did not show the firmware starting a CD within %s; stopped pressing space", CDBootWindow.Max))
	return multistep.ActionContinue
}

// Cleanup has nothing to undo.
func (s *StepBootCommand) Cleanup(multistep.StateBag) {}
