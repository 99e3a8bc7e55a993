package verify

import (
	"strings"
	"testing"
)

// hyperv_enlightenments reaches the VM; `true` with TCG is refused at
// validation, naming the field.
func TestConfigHyperVEnlightenments(t *testing.T) {
	var c Config
	if err := c.Prepare(map[string]interface{}{"hyperv_enlightenments": false}); err != nil {
		t.Fatal(err)
	}
	vm := c.VM()
	if on, _ := vm.HyperV("kvm", "test"); on {
		t.Error("hyperv_enlightenments = false did not reach the VM")
	}
	var d Config
	if err := d.Prepare(map[string]interface{}{}); err != nil {
		t.Fatal(err)
	}
	vm = d.VM()
	if on, _ := vm.HyperV("kvm", "test"); !on {
		t.Error("no enlightenments under KVM by default")
	}
	var e Config
	err := e.Prepare(map[string]interface{}{"hyperv_enlightenments": true, "accelerator": "tcg"})
	if err == nil || !strings.Contains(err.Error(), "hyperv_enlightenments: true needs KVM") {
		t.Errorf("true with tcg: %v", err)
	}
}
