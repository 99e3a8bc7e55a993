package libvirt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// medium is a local file from an earlier step that becomes a volume.
type medium struct {
	stateKey string // where the local path is in state
	suffix   string // volume name suffix after "<vm_name>-"
	what     string
}

var media = []medium{
	{"iso_path", "install.iso", "install ISO"},
	{"cd_path", "answer.iso", "answer-file CD"},
	{"floppy_path", "answer.img", "answer-file floppy"},
	{qemuvm.StateVirtioWinISO, "virtio-win.iso", "virtio-win ISO"},
}

// stepUploadMedia uploads the install ISO, the answer-file CD or floppy
// and the virtio-win ISO into the pool as raw volumes with
// StorageVolUpload, so that a remote hypervisor gets them too.
//
// Uses state: "ui", stateDriver, "iso_path", "cd_path" or "floppy_path",
// StateVirtioWinISO (optional).
// Produces state: stateVolumes (state key → volume name).
type stepUploadMedia struct {
	Pool   string
	VMName string

	created []string
}

func (s *stepUploadMedia) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(stateDriver).(Driver)
	volumes := map[string]string{}
	for _, m := range media {
		path, _ := state.Get(m.stateKey).(string)
		if path == "" {
			continue
		}
		name := s.VMName + "-" + m.suffix
		if err := s.upload(ctx, ui, driver, path, name, m.what); err != nil {
			return steps.Halt(state, ui, err)
		}
		volumes[m.stateKey] = name
	}
	state.Put(stateVolumes, volumes)
	return multistep.ActionContinue
}

func (s *stepUploadMedia) upload(ctx context.Context, ui packersdk.Ui, driver Driver, path, name, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if exists, err := driver.VolumeExists(s.Pool, name); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("pool: %q already holds a volume %q (left by another build of vm_name %q?); delete it or choose another vm_name", s.Pool, name, s.VMName)
	}
	size := uint64(info.Size())
	ui.Say(fmt.Sprintf("Uploading the %s %s (%d MiB) to volume %s in pool %s", what, filepath.Base(path), size>>20, name, s.Pool))
	if err := driver.CreateVolume(s.Pool, name, "raw", size); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	s.created = append(s.created, name)
	body := progress.Track(ui, filepath.Base(path), int64(size), f)
	defer body.Close()
	if err := driver.UploadVolume(s.Pool, name, ctxReader{ctx: ctx, r: body}, size); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Cleanup deletes the uploaded volumes; they are only needed while the
// domain runs.
func (s *stepUploadMedia) Cleanup(state multistep.StateBag) {
	if len(s.created) == 0 {
		return
	}
	driver, ok := cleanupDriver(state)
	if !ok {
		return
	}
	for _, name := range s.created {
		if err := driver.DeleteVolume(s.Pool, name); err != nil {
			leftBehind(state, fmt.Sprintf("volume %s in pool %s", name, s.Pool), fmt.Sprintf("virsh vol-delete %s --pool %s", name, s.Pool), err)
		}
	}
	s.created = nil
}
