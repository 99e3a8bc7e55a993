package common

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
