package common

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

func TestStepExportHostAddressUserNetwork(t *testing.T) {
	state, _ := mockState(t)
	state.Put("generated_data", map[string]interface{}{"Other": "kept"})
	step := &StepExportHostAddress{Network: qemuvm.NetworkUser}
	if step.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	data := state.Get("generated_data").(map[string]interface{})
	if data[GeneratedHostIP] != "10.0.2.2" || data[GeneratedHostBindIP] != "127.0.0.1" || data["Other"] != "kept" {
		t.Errorf("generated data %v", data)
	}
}

func TestStepExportHostAddressBridge(t *testing.T) {
	// The loopback interface stands in for a bridge with an address.
	state, _ := mockState(t)
	if (&StepExportHostAddress{Network: qemuvm.NetworkBridge, Bridge: "lo"}).Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	data := state.Get("generated_data").(map[string]interface{})
	if data[GeneratedHostIP] != "127.0.0.1" || data[GeneratedHostBindIP] != "127.0.0.1" {
		t.Errorf("generated data %v", data)
	}
	state2, _ := mockState(t)
	if (&StepExportHostAddress{Network: qemuvm.NetworkBridge, Bridge: "nosuchbr0"}).Run(context.Background(), state2) != multistep.ActionHalt {
		t.Fatal("a missing bridge was accepted")
	}
	if err := state2.Get("error").(error); !strings.HasPrefix(err.Error(), "bridge:") || !strings.Contains(err.Error(), "nosuchbr0") {
		t.Errorf("error %v", err)
	}
}
