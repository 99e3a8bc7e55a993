package libvirt

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepCreateDiskVolume creates the empty qcow2 system disk as a volume in
// the pool.
//
// Uses state: "ui", stateDriver.
// Produces state: stateDiskVolume.
type stepCreateDiskVolume struct {
	Pool   string
	Name   string
	SizeMB uint64
	// Keep leaves the volume in the pool when the build succeeds.
	Keep bool

	created bool
}

func (s *stepCreateDiskVolume) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(stateDriver).(Driver)
	ui.Say(fmt.Sprintf("Creating a %d MiB qcow2 volume %s in pool %s", s.SizeMB, s.Name, s.Pool))
	if err := driver.CreateVolume(s.Pool, s.Name, "qcow2", s.SizeMB<<20); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("disk_size: %w", err))
	}
	s.created = true
	state.Put(stateDiskVolume, s.Name)
	return multistep.ActionContinue
}

// Cleanup deletes the disk volume unless the build succeeded with
// keep_in_pool; a successful build has downloaded it by now.
func (s *stepCreateDiskVolume) Cleanup(state multistep.StateBag) {
	if !s.created || (s.Keep && !steps.BuildFailed(state)) {
		return
	}
	driver, _ := cleanupDriver(state)
	if err := driver.DeleteVolume(s.Pool, s.Name); err != nil {
		leftBehind(state, fmt.Sprintf("volume %s in pool %s", s.Name, s.Pool), fmt.Sprintf("virsh vol-delete %s --pool %s", s.Name, s.Pool), err)
	}
	s.created = false
}
