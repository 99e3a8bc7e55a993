package common

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// SetupErrLog is Windows Setup's error log on the installed system. The
// Windows PE copy (X:\Windows\Panther\setuperr.log) lives on the RAM disk
// of Setup's boot image and is gone once it restarts; no communicator can
// reach it.
const SetupErrLog = `C:\Windows\Panther\setuperr.log`

// setupErrTailLines is how much of setuperr.log a failed build shows.
const setupErrTailLines = 20

// StepWatchSerial follows the serial console (SerialConsole) from QEMU's
// start to the end of the build. When the build fails, Cleanup adds to
// the build's error the last Windows Setup phase the console showed and,
// when WinRM is connected, the tail of C:\Windows\Panther\setuperr.log.
// It runs after StepRunVM so that its Cleanup comes before the VM is
// stopped.
//
// Secure Boot refusing a boot loader fails the build at once (through
// StateStopBuild) instead of after boot_wait, the boot command and
// winrm_timeout: the build's VM boots only the install media or the
// system disk, so a refused loader means Windows can never start, and
// OVMF then waits in its boot manager for ever.
//
// Uses state: "ui", "communicator" (optional), "error",
// qemuvm.StateStopBuild (optional).
// Produces state: StateSerialConsole.
type StepWatchSerial struct {
	Path string

	console *qemuvm.SerialConsole
	// stopWatch ends the refusal watch; refused is set when it stopped
	// the build.
	stopWatch chan struct{}
	watchDone chan struct{}
	refused   atomic.Bool
}

func (s *StepWatchSerial) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	s.console = qemuvm.NewSerialConsole(s.Path)
	s.console.Start()
	state.Put(StateSerialConsole, s.console)
	if stopBuild, ok := state.Get(qemuvm.StateStopBuild).(context.CancelFunc); ok {
		s.stopWatch, s.watchDone = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(s.watchDone)
			select {
			case <-s.console.BootRefused():
				s.refused.Store(true)
				stopBuild()
			case <-s.stopWatch:
			}
		}()
	}
	return multistep.ActionContinue
}

// Cleanup stops following the console and, on a failed build, explains it.
func (s *StepWatchSerial) Cleanup(state multistep.StateBag) {
	if s.console == nil {
		return
	}
	if s.stopWatch != nil {
		close(s.stopWatch)
		<-s.watchDone
		s.stopWatch = nil
	}
	s.console.Stop()
	if s.refused.Load() {
		ui := state.Get("ui").(packersdk.Ui)
		err := fmt.Errorf("the firmware's Secure Boot refused the boot loader, so Windows cannot start (%s): sign the media for the keys the firmware enrolls (efi_firmware_vars), or set secure_boot = false\n%s",
			s.console.BootRefusal(), s.console.Diagnosis())
		ui.Error(err.Error())
		state.Put("error", err)
		return
	}
	err, failed := state.Get("error").(error)
	if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled || !failed {
		return
	}
	ui := state.Get("ui").(packersdk.Ui)
	diag := s.console.Diagnosis()
	if comm, ok := state.Get("communicator").(packersdk.Communicator); ok && comm != nil {
		diag += "; " + FetchSetupErrLog(comm)
	} else {
		diag += "; WinRM was not connected, so " + SetupErrLog + " could not be read (the Windows PE copy, X:\\Windows\\Panther\\setuperr.log, is never reachable)"
	}
	ui.Error(diag)
	state.Put("error", fmt.Errorf("%w\n%s", err, diag))
}

// FetchSetupErrLog reads the tail of C:\Windows\Panther\setuperr.log over
// the communicator and describes it for an error message.
func FetchSetupErrLog(comm packersdk.Communicator) string {
	r, err := guestcmd.Run(context.Background(), comm, guestcmd.Command{
		Line: "type " + SetupErrLog, What: "reading " + SetupErrLog + " over WinRM",
		Timeout: time.Minute, Limit: "a file read; it answers within seconds",
	})
	switch {
	case guestcmd.IsTimeout(err):
		return fmt.Sprintf("reading %s over WinRM timed out", SetupErrLog)
	case err != nil:
		return fmt.Sprintf("reading %s over WinRM failed: %v", SetupErrLog, err)
	case r.ExitStatus != 0:
		return fmt.Sprintf("%s could not be read over WinRM (exit %d: %s); the Windows PE copy, X:\\Windows\\Panther\\setuperr.log, is never reachable",
			SetupErrLog, r.ExitStatus, strings.TrimSpace(r.Stderr))
	}
	stdout := r.Stdout
	text := strings.TrimSpace(strings.ReplaceAll(stdout, "\r\n", "\n"))
	if text == "" {
		return SetupErrLog + " is empty"
	}
	lines := strings.Split(text, "\n")
	if len(lines) > setupErrTailLines {
		lines = lines[len(lines)-setupErrTailLines:]
	}
	return fmt.Sprintf("last %d line(s) of %s:\n  %s", len(lines), SetupErrLog, strings.Join(lines, "\n  "))
}
