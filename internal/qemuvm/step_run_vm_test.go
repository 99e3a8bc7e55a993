package qemuvm

import (
	"strings"
	"testing"
)

// A second forward (winbake-sysprep and winbake-verify reach both WinRM
// ports) joins the user network's first one.
func TestStepRunVMExtraForwards(t *testing.T) {
	state, _ := mockState(t)
	state.Put(StateHostPort, 3333)
	state.Put("https_port", 4444)
	s := &StepRunVM{VM: &VMConfig{Network: NetworkUser}, GuestPort: 5985, ExtraForwards: []PortForward{{StateKey: "https_port", GuestPort: 5986}}}
	spec := s.Spec(state, AccelTCG)
	spec.Name, spec.Machine, spec.CPUs, spec.MemoryMB, spec.Firmware, spec.Disk, spec.DiskInterface, spec.NetDevice = "w", "pc", 1, 512, FirmwareBIOS, "/d.qcow2", DiskSATA, NetE1000
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(Flatten(args), " "); !strings.Contains(got, "-netdev user,id=n0,hostfwd=tcp:127.0.0.1:3333-:5985,hostfwd=tcp:127.0.0.1:4444-:5986 ") {
		t.Errorf("forwards:\n%s", got)
	}
}
