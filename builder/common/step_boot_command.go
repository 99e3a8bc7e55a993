package common

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// DefaultUEFIBootCommand answers "Press any key to boot from CD or DVD"
// of Windows media under UEFI by pressing space a few times.
var DefaultUEFIBootCommand = []string{"<spacebar><wait1s><spacebar><wait1s><spacebar><wait1s><spacebar>"}

// DefaultUEFIBootCommandTCG is the default under TCG, where OVMF takes
// 10 to 20 s to start the CD's boot loader (much longer on a busy host),
// whose prompt waits about 5 s: space once a second for 30 s. When the
// serial console is followed, StepBootCommand's UntilCDBoot presses space
// instead until the firmware has started the CD (see CDBootWindow).
var DefaultUEFIBootCommandTCG = []string{strings.Repeat("<spacebar><wait1s>", 30)}

// CDBootWindow bounds UntilCDBoot: space is pressed once a second until
// After has passed since the console showed OVMF starting the CD's boot
// loader, and never longer than Max. It must stop before Setup restarts
// the machine, when the same prompt would boot the CD again.
var CDBootWindow = struct{ After, Max time.Duration }{After: 10 * time.Second, Max: 5 * time.Minute}

// BootKey is one step of a parsed boot command: a key chord to press, or a
// pause.
type BootKey struct {
	QCodes []string
	Wait   time.Duration
}

var specialKeys = map[string]string{
	"enter": "ret", "return": "ret", "spacebar": "spc", "esc": "esc", "tab": "tab",
	"bs": "backspace", "del": "delete", "up": "up", "down": "down", "left": "left", "right": "right",
	"f1": "f1", "f2": "f2", "f3": "f3", "f4": "f4", "f5": "f5", "f6": "f6", "f7": "f7",
	"f8": "f8", "f9": "f9", "f10": "f10", "f11": "f11", "f12": "f12",
}

var charKeys = map[rune][]string{
	' ': {"spc"}, '.': {"dot"}, ',': {"comma"}, '/': {"slash"}, '\\': {"backslash"}, '-': {"minus"},
	'=': {"equal"}, ';': {"semicolon"}, ':': {"shift", "semicolon"}, '_': {"shift", "minus"},
}

// ParseBootCommand parses `boot_command` entries: plain characters (a-z,
// A-Z, 0-9 and . , / \ - = ; : _ and space), special keys such as
// `<enter>`, `<spacebar>`, `<esc>`, `<tab>`, `<f1>`…`<f12>`, and waits
// `<wait>` (1 s), `<wait5>` (5 s) or `<wait500ms>` (any Go duration).
func ParseBootCommand(entries []string) ([]BootKey, error) {
	var keys []BootKey
	for _, e := range entries {
		rest := e
		for rest != "" {
			if rest[0] == '<' {
				end := strings.IndexByte(rest, '>')
				if end < 0 {
					return nil, fmt.Errorf("boot_command: %q has an unclosed <", e)
				}
				name := strings.ToLower(rest[1:end])
				rest = rest[end+1:]
				if q, ok := specialKeys[name]; ok {
					keys = append(keys, BootKey{QCodes: []string{q}})
					continue
				}
				if w, ok := strings.CutPrefix(name, "wait"); ok {
					d := time.Second
					if w != "" {
						if strings.IndexFunc(w, unicode.IsLetter) < 0 {
							w += "s"
						}
						var err error
						if d, err = time.ParseDuration(w); err != nil || d < 0 {
							return nil, fmt.Errorf("boot_command: <%s> is not a wait; use <wait>, <wait5> or <wait500ms>", name)
						}
					}
					keys = append(keys, BootKey{Wait: d})
					continue
				}
				return nil, fmt.Errorf("boot_command: <%s> is not a known key; use for example <enter>, <spacebar>, <esc>, <tab>, <f1>..<f12> or <wait5>", name)
			}
			r := []rune(rest)[0]
			rest = rest[len(string(r)):]
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				keys = append(keys, BootKey{QCodes: []string{string(r)}})
			case r >= 'A' && r <= 'Z':
				keys = append(keys, BootKey{QCodes: []string{"shift", string(unicode.ToLower(r))}})
			default:
				q, ok := charKeys[r]
				if !ok {
					return nil, fmt.Errorf("boot_command: the character %q cannot be typed; use letters, digits, space and . , / \\ - = ; : _", r)
				}
				keys = append(keys, BootKey{QCodes: q})
			}
		}
	}
	return keys, nil
}

// StepBootCommand waits boot_wait after QEMU started, then types the boot
// command through QMP send-key.
//
// Uses state: "ui", StateDriver, StateAccelerator.
type StepBootCommand struct {
	BootWait time.Duration
	Keys     []BootKey
	// TCGKeys, when set, replace Keys for a VM running under TCG
	// (StateAccelerator), which reaches the boot prompt much later.
	TCGKeys []BootKey
	// KeyInterval is the pause between keys (default 100 ms).
	KeyInterval time.Duration
	// UntilCDBoot, under TCG with the serial console followed
	// (StateSerialConsole), replaces TCGKeys by space once a second until
	// CDBootWindow.After past the firmware starting the CD's boot loader.
	UntilCDBoot bool
}

func (s *StepBootCommand) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	keys := s.Keys
	if accel, _ := state.Get(qemuvm.StateAccelerator).(string); accel == qemuvm.AccelTCG && s.TCGKeys != nil {
		keys = s.TCGKeys
	}
	if len(keys) == 0 {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(qemuvm.StateDriver).(qemuvm.Driver)
	interval := s.KeyInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	ui.Say(fmt.Sprintf("Waiting %s, then typing the boot command", s.BootWait))
	if !sleep(ctx, s.BootWait) {
		return steps.Halt(state, ui, ctx.Err())
	}
	console, followed := state.Get(StateSerialConsole).(*qemuvm.SerialConsole)
	if accel, _ := state.Get(qemuvm.StateAccelerator).(string); s.UntilCDBoot && accel == qemuvm.AccelTCG && followed {
		return s.untilCDBoot(ctx, state, ui, driver, console)
	}
	for _, k := range keys {
		if k.Wait > 0 {
			if !sleep(ctx, k.Wait) {
				return steps.Halt(state, ui, ctx.Err())
			}
			continue
		}
		if err := driver.SendKeys(ctx, k.QCodes...); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("boot_command: %w", err))
		}
		if !sleep(ctx, interval) {
			return steps.Halt(state, ui, ctx.Err())
		}
	}
	return multistep.ActionContinue
}

// Cleanup has nothing to undo.
// untilCDBoot presses space once a second until the firmware has started
// the CD's boot loader and CDBootWindow.After has passed.
func (s *StepBootCommand) untilCDBoot(ctx context.Context, state multistep.StateBag, ui packersdk.Ui, driver qemuvm.Driver, console *qemuvm.SerialConsole) multistep.StepAction {
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
		if err := driver.SendKeys(ctx, "spc"); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("boot_command: %w", err))
		}
		if !sleep(ctx, time.Second) {
			return steps.Halt(state, ui, ctx.Err())
		}
	}
	ui.Say(fmt.Sprintf("The serial console did not show the firmware starting a CD within %s; stopped pressing space", CDBootWindow.Max))
	return multistep.ActionContinue
}

func (s *StepBootCommand) Cleanup(multistep.StateBag) {}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
