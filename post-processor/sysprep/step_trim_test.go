package sysprep

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// modelDisk is a system disk with fixed unmap limits that counts the
// retrims Windows carried out on it. (The stand-in VM's own disk is
// exercised by the VM tests; in-process, the limits are given.)
type modelDisk struct {
	support winsim.DiscardSupport

	mu    sync.Mutex
	trims int
}

func (d *modelDisk) Discard() (winsim.DiscardSupport, error) { return d.support, nil }

func (d *modelDisk) TrimFreeSpace() (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trims++
	return 64 << 20, nil
}

func (d *modelDisk) trimCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.trims
}

// winbakeSystemDisk is the system disk as winbake's VMs attach it: virtio-blk
// with wbcommon.DiscardGranularity.
func winbakeSystemDisk() *modelDisk {
	return &modelDisk{support: winsim.DiscardSupport{Bus: winsim.BusVirtioBlk, Granularity: qemuvm.DiscardGranularity, MaxBytes: 1 << 31}}
}

func TestStepTrimRetrimsWinbakesDisk(t *testing.T) {
	disk := winbakeSystemDisk()
	_, state, out := standinStateOn(t, disk)
	runSteps(t, state, &stepTrim{})
	if disk.trimCount() != 1 || !strings.Contains(out.String(), "VERBOSE: Retrim:  100% complete.") {
		t.Errorf("%d retrims:\n%s", disk.trimCount(), out)
	}
}

// A disk Windows does not retrim (QEMU's default virtio-blk granularity)
// stops the build with the reason, and nothing is discarded.
func TestStepTrimRefusedGranularity(t *testing.T) {
	disk := &modelDisk{support: winsim.DiscardSupport{Bus: winsim.BusVirtioBlk, Granularity: 512, MaxBytes: 1 << 31}}
	_, state, _ := standinStateOn(t, disk)
	if (&stepTrim{}).Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("the refused retrim went unnoticed")
	}
	err, _ := state.Get("error").(error)
	for _, want := range []string{"unmap granularity", "discard_granularity=8192", "skip_trim", "Incorrect function. (0x80070001)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if disk.trimCount() != 0 {
		t.Errorf("%d retrims of a disk Windows refuses", disk.trimCount())
	}
}
