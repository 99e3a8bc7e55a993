package qemuvm

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Files of the running VM in the output directory. The serial console log
// stays with the artifact; the QMP socket and pidfile are removed.
const (
	SerialLogName = "serial.log"
	qmpSocketName = "qmp.sock"
	pidFileName   = "qemu.pid"
)

// StepRunVM builds the QEMU command line from the VM settings and the
// state of the earlier steps and starts QEMU.
//
// Uses state: "ui", StateDriver, "iso_path", "cd_path" or "floppy_path",
// StateVirtioWinISO (optional), StateDiskPath, StateOVMF (UEFI),
// StateTPMSocket (optional), StateHostPort.
// Produces state: StateAccelerator, StateHyperV, StateGuestMAC (bridge
// network).
type StepRunVM struct {
	VM        *VMConfig
	Name      string
	OutputDir string
	GuestPort int
	UserArgs  [][]string
	Host      HostPaths
	// SecureBoot starts a UEFI VM with SMM and the flash locked to it.
	SecureBoot bool
	// ExtraForwards are more guest ports forwarded from 127.0.0.1 on the
	// user network, each from the host port a StepForwardPort put under
	// its StateKey.
	ExtraForwards []PortForward

	started bool
}

// PortForward forwards the host port in state under StateKey to
// GuestPort.
type PortForward struct {
	StateKey  string
	GuestPort int
}

// Spec assembles the VMSpec from the configuration and state.
func (s *StepRunVM) Spec(state multistep.StateBag, accel string) VMSpec {
	str := func(key string) string { v, _ := state.Get(key).(string); return v }
	spec := VMSpec{
		Name:          s.Name,
		Machine:       s.VM.MachineType,
		Accelerator:   accel,
		CPUs:          s.VM.CPUs,
		MemoryMB:      s.VM.MemoryMB,
		Firmware:      s.VM.Firmware,
		SecureBoot:    s.SecureBoot && s.VM.Firmware == FirmwareUEFI,
		TPMSocket:     str(StateTPMSocket),
		InstallISO:    str("iso_path"),
		AnswerCD:      str("cd_path"),
		AnswerFloppy:  str("floppy_path"),
		Disk:          str(StateDiskPath),
		DiskInterface: s.VM.DiskInterface,
		NetDevice:     s.VM.NetDevice,
		Network:       s.VM.Network,
		Bridge:        s.VM.Bridge,
		MAC:           str(StateGuestMAC),
		GuestPort:     s.GuestPort,
		SerialLog:     filepath.Join(s.OutputDir, SerialLogName),
		QMPSocket:     filepath.Join(s.OutputDir, qmpSocketName),
		PIDFile:       filepath.Join(s.OutputDir, pidFileName),
		VNC:           s.VM.VNCDisplay(),
		UserArgs:      s.UserArgs,
	}
	if v := str(StateVirtioWinISO); v != "" {
		spec.ExtraCDs = []string{v}
	}
	if ovmf, ok := state.Get(StateOVMF).(OVMF); ok {
		spec.OVMF = ovmf
	}
	if port, ok := state.Get(StateHostPort).(int); ok {
		spec.HostPort = port
	}
	if n, ok := state.Get(StateUserNetwork).(*UserNetwork); ok {
		spec.UserNetwork = n
	}
	for _, f := range s.ExtraForwards {
		if port, ok := state.Get(f.StateKey).(int); ok {
			spec.ExtraHostForwards = append(spec.ExtraHostForwards, HostForward{HostPort: port, GuestPort: f.GuestPort})
		}
	}
	return spec
}

func (s *StepRunVM) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(StateDriver).(Driver)
	accel, reason := s.Host.ChooseAccelerator(s.VM.Accelerator)
	ui.Say(fmt.Sprintf("Accelerator %s: %s", accel, reason))
	state.Put(StateAccelerator, accel)
	hyperv, err := s.VM.HyperV(accel, reason)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	state.Put(StateHyperV, HyperVRecord(hyperv))
	if hyperv {
		ui.Say("Hyper-V enlightenments: " + strings.Join(HyperVEnlightenments, ","))
	}
	if s.VM.Network == NetworkBridge {
		if _, ok := state.Get(StateGuestMAC).(string); !ok {
			state.Put(StateGuestMAC, RandomMAC())
		}
	}
	spec := s.Spec(state, accel)
	spec.HyperV = hyperv
	args, err := spec.Args()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	log.Printf("QEMU arguments: %s", strings.Join(Flatten(args), " "))
	ui.Say(fmt.Sprintf("Starting QEMU (%s, %s, %d CPUs, %d MiB); serial console in %s",
		s.VM.MachineType, s.VM.Firmware, s.VM.CPUs, s.VM.MemoryMB, filepath.Join(s.OutputDir, SerialLogName)))
	if err := driver.StartVM(args); err != nil {
		return steps.Halt(state, ui, err)
	}
	s.started = true
	if s.VM.VNC {
		addr, err := vncAddress(ctx, driver)
		if err != nil {
			return steps.Halt(state, ui, fmt.Errorf("vnc: %w", err))
		}
		host, port, _ := net.SplitHostPort(addr)
		ui.Say(fmt.Sprintf("The VM's screen is served over VNC at %s (vncviewer %s::%s)", addr, host, port))
	}
	return multistep.ActionContinue
}

// Cleanup kills QEMU if it still runs (a finished build has shut it down)
// and removes its socket and pidfile.
func (s *StepRunVM) Cleanup(state multistep.StateBag) {
	if !s.started {
		return
	}
	driver := state.Get(StateDriver).(Driver)
	_ = driver.StopVM()
	_ = os.Remove(filepath.Join(s.OutputDir, qmpSocketName))
	_ = os.Remove(filepath.Join(s.OutputDir, pidFileName))
	if steps.BuildFailed(state) {
		_ = os.Remove(filepath.Join(s.OutputDir, SerialLogName))
	}
}

// vncAddress asks QEMU where its VNC server listens, once QMP answers
// (within 30 s of the start).
func vncAddress(ctx context.Context, driver Driver) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		addr, err := driver.VNCAddress(ctx)
		if err == nil {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
