package qemuvm

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

func TestParseBootCommand(t *testing.T) {
	keys, err := ParseBootCommand([]string{"<spacebar><wait2>aB:<enter><wait500ms>"})
	if err != nil {
		t.Fatal(err)
	}
	want := []BootKey{{QCodes: []string{"spc"}}, {Wait: 2 * time.Second}, {QCodes: []string{"a"}},
		{QCodes: []string{"shift", "b"}}, {QCodes: []string{"shift", "semicolon"}}, {QCodes: []string{"ret"}}, {Wait: 500 * time.Millisecond}}
	if !slices.EqualFunc(keys, want, func(a, b BootKey) bool { return a.Wait == b.Wait && slices.Equal(a.QCodes, b.QCodes) }) {
		t.Fatalf("got %+v", keys)
	}
	for _, bad := range []string{"<enter", "<hyper>", "<waitX>", "é"} {
		if _, err := ParseBootCommand([]string{bad}); err == nil || !strings.HasPrefix(err.Error(), "boot_command:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestStepBootCommand(t *testing.T) {
	state, d := mockState(t)
	keys, _ := ParseBootCommand([]string{"<spacebar><wait10ms><enter>"})
	step := &StepBootCommand{BootWait: 10 * time.Millisecond, Keys: keys, KeyInterval: time.Millisecond}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if len(d.SentKeys) != 2 || d.SentKeys[0][0] != "spc" || d.SentKeys[1][0] != "ret" {
		t.Fatalf("sent %v", d.SentKeys)
	}
}
