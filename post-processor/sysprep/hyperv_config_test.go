package sysprep

import (
	"strings"
	"testing"
)

// hyperv_enlightenments reaches the VM; `true` with TCG is refused at
// validation, naming the field.
func TestConfigHyperVEnlightenments(t *testing.T) {
	c, err := prepare(t, map[string]interface{}{"winrm_password": "Pw-1234", "hyperv_enlightenments": false})
	if err != nil {
		t.Fatal(err)
	}
	vm := c.VM()
	if on, _ := vm.HyperV("kvm", "test"); on {
		t.Error("hyperv_enlightenments = false did not reach the VM")
	}
	c, err = prepare(t, map[string]interface{}{"winrm_password": "Pw-1234"})
	if err != nil {
		t.Fatal(err)
	}
	vm = c.VM()
	if on, _ := vm.HyperV("kvm", "test"); !on {
		t.Error("no enlightenments under KVM by default")
	}
	_, err = prepare(t, map[string]interface{}{"winrm_password": "Pw-1234", "hyperv_enlightenments": true, "accelerator": "tcg"})
	if err == nil || !strings.Contains(err.Error(), "hyperv_enlightenments: true needs KVM") {
		t.Errorf("true with tcg: %v", err)
	}
}
