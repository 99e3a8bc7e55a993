package libvirt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// A download that brings back nothing, or something that is not the qcow2
// volume, fails the step and leaves no file: an empty disk is never passed
// on as the image.
func TestStepDownloadDiskRefusesABadCopy(t *testing.T) {
	for name, content := range map[string][]byte{"empty": nil, "not qcow2": []byte("half a disk")} {
		t.Run(name, func(t *testing.T) {
			drv := newRecordingDriver()
			drv.volumes["win.qcow2"] = content
			out := t.TempDir()
			state := new(multistep.BasicStateBag)
			var ui bytes.Buffer
			state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &ui, ErrorWriter: &ui})
			state.Put(stateDriver, Driver(drv))
			state.Put(stateDiskVolume, "win.qcow2")
			step := &stepDownloadDisk{Pool: "default", OutputDir: out}
			if action := step.Run(context.Background(), state); action != multistep.ActionHalt {
				t.Fatalf("a %s download passed:\n%s", name, ui.String())
			}
			err, _ := state.Get("error").(error)
			if err == nil || !strings.Contains(err.Error(), "downloaded disk volume win.qcow2") {
				t.Errorf("error %v", err)
			}
			state.Put(multistep.StateHalted, true) // as the runner does
			step.Cleanup(state)
			if _, err := os.Stat(filepath.Join(out, "win.qcow2")); !os.IsNotExist(err) {
				t.Errorf("the bad copy is left: %v", err)
			}
		})
	}
}
