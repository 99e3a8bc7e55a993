package libvirt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// stepWatchDomain asks libvirtd for the domain's state in the background.
// A domain that stops while the build still needs it (crashed, its QEMU
// killed, powered off by itself) and a connection to libvirtd that is
// lost fail the build at once: whatever step runs is cancelled through
// wbcommon.StateStopBuild, instead of waiting for winrm_timeout.
// stepShutdown marks the shutdown it asks for (wbcommon.ExpectVMExit).
//
// Uses state: "ui", stateDriver, wbcommon.StateStopBuild.
// Produces state: wbcommon.StateVMWatch; "error" when the domain stopped.
type stepWatchDomain struct {
	Name string
	// PowerOffEnds: the guest powering itself off is how the build ends
	// (communicator "none"); only a crash or a lost connection fails it.
	PowerOffEnds bool
	// Interval is the time between two questions (default 2 s).
	Interval time.Duration

	watch  *qemuvm.VMWatch
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	fault error
}

func (s *stepWatchDomain) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	driver := state.Get(stateDriver).(Driver)
	stopBuild, _ := state.Get(qemuvm.StateStopBuild).(context.CancelFunc)
	s.watch = &qemuvm.VMWatch{}
	state.Put(qemuvm.StateVMWatch, s.watch)
	interval := s.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			fault := s.check(driver)
			if fault != nil && !s.watch.Expected() {
				s.mu.Lock()
				s.fault = fault
				s.mu.Unlock()
				if stopBuild != nil {
					stopBuild()
				}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
	return multistep.ActionContinue
}

// check returns why the domain can no longer serve the build, or nil.
func (s *stepWatchDomain) check(driver Driver) error {
	st, err := driver.DomainState(s.Name)
	if err != nil {
		if r, ok := driver.(reconnector); ok && !r.Connected() {
			return fmt.Errorf("the connection to libvirtd was lost: %w", err)
		}
		return fmt.Errorf("asking libvirtd for domain %s failed: %w", s.Name, err)
	}
	switch st {
	case golibvirt.DomainShutoff:
		if s.PowerOffEnds {
			s.watch.Expect()
			return nil
		}
		return fmt.Errorf("domain %s shut off while the build still needed it (its QEMU exited; see the hypervisor's log /var/log/libvirt/qemu/%s.log)", s.Name, s.Name)
	case golibvirt.DomainCrashed:
		return fmt.Errorf("domain %s crashed (see the hypervisor's log /var/log/libvirt/qemu/%s.log)", s.Name, s.Name)
	}
	return nil
}

// Cleanup stops watching; a fault seen is the build's error, whatever a
// step reported meanwhile.
func (s *stepWatchDomain) Cleanup(state multistep.StateBag) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel = nil
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault == nil {
		return
	}
	if prev, ok := state.Get("error").(error); ok && !errors.Is(prev, context.Canceled) {
		fault = fmt.Errorf("%w (meanwhile: %v)", fault, prev)
	}
	state.Put("error", fault)
	state.Get("ui").(packersdk.Ui).Error(fault.Error())
}
