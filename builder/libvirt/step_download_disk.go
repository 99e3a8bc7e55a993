package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/progress"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepDownloadDisk copies the finished disk volume into the output
// directory with StorageVolDownload; with keep_in_pool it does nothing.
//
// Uses state: "ui", stateDriver, stateDiskVolume.
// Produces state: stateDiskPath.
type stepDownloadDisk struct {
	Pool      string
	OutputDir string
	Skip      bool

	written string
}

func (s *stepDownloadDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if s.Skip {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(stateDriver).(Driver)
	name := state.Get(stateDiskVolume).(string)
	dst := filepath.Join(s.OutputDir, name)
	size, err := driver.VolumeSize(s.Pool, name)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("downloading the disk: %w", err))
	}
	ui.Say(fmt.Sprintf("Downloading volume %s (%d MiB) to %s", name, size>>20, dst))
	// The copy must be the disk the domain wrote: a copy that ended early
	// or empty is refused, never passed on as the image. It is fetched
	// once more before the build fails, since the volume itself is intact
	// on the hypervisor.
	const attempts = 2
	for attempt := 1; ; attempt++ {
		err := s.download(ctx, ui, driver, name, dst, size)
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt == attempts || !errors.Is(err, errBadCopy) {
			return steps.Halt(state, ui, err)
		}
		ui.Error(fmt.Sprintf("%v; downloading it again", err))
		if err := os.Remove(dst); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("removing the refused copy: %w", err))
		}
	}
	state.Put(stateDiskPath, dst)
	return multistep.ActionContinue
}

// errBadCopy marks a download that completed but is not the volume.
var errBadCopy = errors.New("the copy is not the volume")

// download copies the volume to dst, a new file, and checks the copy.
func (s *stepDownloadDisk) download(ctx context.Context, ui packersdk.Ui, driver Driver, name, dst string, size uint64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("downloading the disk: %w", err)
	}
	s.written = dst

	// The RPC client writes; the progress bar tracks a reader, so the
	// bytes go through a pipe.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := driver.DownloadVolume(s.Pool, name, ctxWriter{ctx: ctx, w: pw})
		pw.CloseWithError(err)
		done <- err
	}()
	body := progress.Track(ui, name, int64(size), pr)
	_, copyErr := io.Copy(f, body)
	body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	dlErr := <-done
	closeErr := f.Close()
	for _, err := range []error{dlErr, copyErr, closeErr} {
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("downloading the disk volume %s: %w", name, err)
		}
	}
	img, err := diskcheck.Check(ctx, "downloaded disk volume "+name, dst)
	if err == nil && img.Format != "qcow2" {
		err = fmt.Errorf("downloaded disk volume %s holds %s data, not the qcow2 volume winbake created (%d bytes downloaded)", name, img.Format, img.Size)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errBadCopy, err)
	}
	return nil
}

// Cleanup removes a partial or finished download when the build failed.
func (s *stepDownloadDisk) Cleanup(state multistep.StateBag) {
	if s.written != "" && steps.BuildFailed(state) {
		_ = os.Remove(s.written)
	}
}
