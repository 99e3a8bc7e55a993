package qemuvm

import (
	"strings"
	"testing"
)

// Unset settings get the builders' defaults; a 0 the template sets is
// refused naming its field; VM carries the settings with the rest at the
// builders' defaults.
func TestImageVMConfigPrepare(t *testing.T) {
	var c ImageVMConfig
	if errs := c.Prepare(nil, nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	if c.Accelerator != AccelAuto || c.CPUs != 2 || c.MemoryMB != 4096 || c.HostPortMin != 2222 || c.HostPortMax != 4444 {
		t.Errorf("defaults: %+v", c)
	}
	if vm := c.VM(); vm.CPUs != 2 || vm.Firmware != FirmwareUEFI {
		t.Errorf("VM: cpus %d, firmware %q", vm.CPUs, vm.Firmware)
	}

	c = ImageVMConfig{MemoryMB: 8192}
	errs := c.Prepare(nil, []string{"cpus", "memory"})
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "cpus: 0 is out of range") {
		t.Errorf("cpus = 0: %v", errs)
	}
	if c.MemoryMB != 8192 || c.VM().MemoryMB != 8192 {
		t.Errorf("memory = 8192 became %d (VM %d)", c.MemoryMB, c.VM().MemoryMB)
	}
}
