package qemuvm

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// Under TCG the TCG keys are typed; under KVM the ordinary ones.
func TestStepBootCommandTCGKeys(t *testing.T) {
	kvmKeys, _ := ParseBootCommand([]string{"<enter>"})
	tcgKeys, _ := ParseBootCommand([]string{"<spacebar><wait1ms><spacebar>"})
	for accel, want := range map[string]int{AccelKVM: 1, AccelTCG: 2} {
		state, d := mockState(t)
		state.Put(StateAccelerator, accel)
		step := &StepBootCommand{Keys: kvmKeys, TCGKeys: tcgKeys, KeyInterval: time.Millisecond}
		if step.Run(context.Background(), state) != multistep.ActionContinue {
			t.Fatal(state.Get("error"))
		}
		if len(d.SentKeys) != want {
			t.Errorf("%s: sent %v", accel, d.SentKeys)
		}
	}
	// The TCG default presses space once a second for 30 s.
	keys, err := ParseBootCommand(DefaultUEFIBootCommandTCG)
	if err != nil || len(keys) != 60 || keys[0].QCodes[0] != "spc" || keys[1].Wait != time.Second {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
}

// Under TCG with the serial console followed, space is pressed until the
// firmware has started the CD's boot loader and the window after it has
// passed, however late that comes; without it, until the bound.
func TestStepBootCommandUntilCDBoot(t *testing.T) {
	old := CDBootWindow
	CDBootWindow.After, CDBootWindow.Max = 2*time.Second, 10*time.Second
	t.Cleanup(func() { CDBootWindow = old })
	tcgKeys, _ := ParseBootCommand([]string{"<enter>"})

	state, d := mockState(t)
	state.Put(StateAccelerator, AccelTCG)
	console := NewSerialConsole(t.TempDir() + "/serial.log")
	state.Put(StateSerialConsole, console)
	go func() {
		time.Sleep(3 * time.Second) // a slow firmware, past any fixed count
		console.Observe(`BdsDxe: loading Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)`)
		console.Observe(`BdsDxe: starting Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)`)
	}()
	step := &StepBootCommand{Keys: tcgKeys, TCGKeys: tcgKeys, UntilCDBoot: true}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if n := len(d.SentKeys); n < 3 || n > 8 {
		t.Errorf("%d keys; want space once a second for the 3 s to the CD and 2 s after", n)
	}
	for _, k := range d.SentKeys {
		if len(k) != 1 || k[0] != "spc" {
			t.Errorf("sent %v, want only space", d.SentKeys)
			break
		}
	}

	// No CD boot on the console: space until the bound, then on.
	CDBootWindow.Max = 2 * time.Second
	state, d = mockState(t)
	state.Put(StateAccelerator, AccelTCG)
	state.Put(StateSerialConsole, NewSerialConsole(t.TempDir()+"/serial.log"))
	if step.Run(context.Background(), state) != multistep.ActionContinue || len(d.SentKeys) < 2 || len(d.SentKeys) > 3 {
		t.Errorf("without a CD boot: %d keys, error %v", len(d.SentKeys), state.Get("error"))
	}
}
