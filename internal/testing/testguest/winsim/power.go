package winsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// PowerState is where the machine is in its shutdown/boot cycle.
type PowerState int

const (
	// StateUp: Windows runs, WinRM serves.
	StateUp PowerState = iota
	// StateShutdownPending: a shutdown is scheduled (`shutdown /t N`,
	// abortable) or initiated; commands are still answered.
	StateShutdownPending
	// StateServicingOnShutdown: WinRM has stopped (connections dropped with
	// FIN or RST), processes are gone, servicing runs.
	StateServicingOnShutdown
	// StateOff: powered off (connections refused or blackholed).
	StateOff
	// StateBooting: booting, servicing pending packages; WinRM not up
	// (refused, or HTTP.sys's 503).
	StateBooting
	// StateWinRMEarly: WinRM answers but the machine is still settling
	// (optional Create fault 0x800703FA).
	StateWinRMEarly
)

var stateNames = [...]string{"Up", "ShutdownPending", "ServicingOnShutdown", "Off", "Booting", "WinRMEarly"}

func (s PowerState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("PowerState(%d)", int(s))
}

// PowerOptions set how shutdowns and boots go. Zero durations pass a state
// at once; zero listener modes take the first choice listed.
type PowerOptions struct {
	// ShutdownDelay is how long an initiated shutdown still answers
	// commands before WinRM stops.
	ShutdownDelay time.Duration
	// Drop is how WinRM stopping ends open connections:
	// wsman.ListenerDropFIN or wsman.ListenerDropRST.
	Drop wsman.ListenerState
	// ShutdownTime is the ServicingOnShutdown phase, lengthened by pending
	// packages' ShutdownServicing.
	ShutdownTime time.Duration
	// Off is the listener while off: wsman.ListenerRefused or
	// wsman.ListenerBlackhole.
	Off wsman.ListenerState
	// OffTime is how long a restart stays off.
	OffTime time.Duration
	// Boot is the listener while booting: wsman.ListenerRefused or
	// wsman.ListenerUnavailable (503).
	Boot wsman.ListenerState
	// BootTime is the Booting phase, lengthened by pending packages'
	// BootServicing.
	BootTime time.Duration
	// EarlyWinRM is the WinRMEarly phase; zero skips it.
	EarlyWinRM time.Duration
	// EarlyCreateFault makes shell creation fail with 0x800703FA during
	// WinRMEarly (see CreateFault).
	EarlyCreateFault bool
	// KeysClearDelay, when positive, clears the pending-reboot keys that
	// long after WinRM is back instead of during the boot.
	KeysClearDelay time.Duration
	// ServicingWorkerTime, when positive, is how long the Windows Modules
	// Installer worker (TiWorker.exe) keeps running after WinRM is back
	// from a boot that serviced packages; it runs at least until the keys
	// clear (KeysClearDelay), as it is what clears them.
	ServicingWorkerTime time.Duration
	// AutoRebootDelay is how long after the boot a package needing a
	// second reboot makes Windows restart by itself.
	AutoRebootDelay time.Duration
	// ShutdownSecond is one second of `shutdown /t N` (default 1s).
	ShutdownSecond time.Duration
	// SysprepTime is how long sysprep runs before it shuts down.
	SysprepTime time.Duration
}

func (o *PowerOptions) check() error {
	if o.Drop == wsman.ListenerUp {
		o.Drop = wsman.ListenerDropFIN
	}
	if o.Off == wsman.ListenerUp {
		o.Off = wsman.ListenerRefused
	}
	if o.Boot == wsman.ListenerUp {
		o.Boot = wsman.ListenerRefused
	}
	if o.ShutdownSecond == 0 {
		o.ShutdownSecond = time.Second
	}
	if o.Drop != wsman.ListenerDropFIN && o.Drop != wsman.ListenerDropRST {
		return errors.New("winsim: PowerOptions.Drop must be ListenerDropFIN or ListenerDropRST")
	}
	if o.Off != wsman.ListenerRefused && o.Off != wsman.ListenerBlackhole {
		return errors.New("winsim: PowerOptions.Off must be ListenerRefused or ListenerBlackhole")
	}
	if o.Boot != wsman.ListenerRefused && o.Boot != wsman.ListenerUnavailable {
		return errors.New("winsim: PowerOptions.Boot must be ListenerRefused or ListenerUnavailable")
	}
	return nil
}

// Transition is one entry of the power history.
type Transition struct {
	State PowerState
	At    time.Time
	// Boot is the number of boots so far (1 during and after the first).
	Boot   int
	Reason string
}

type shutdownKind int

const (
	kindRestart shutdownKind = iota
	kindPowerOff
)

// powerMachine is the machine's power state. Transitions are serialized
// by transMu, which is also held while the listener is driven; the fields
// are guarded by Machine.mu.
type powerMachine struct {
	m       *Machine
	transMu sync.Mutex

	pc       wsman.PowerControl
	listener wsman.ListenerState // as last set, guarded by transMu

	state       PowerState
	kind        shutdownKind
	scheduled   bool // ShutdownPending with a running countdown
	gen         int
	timers      []Timer // steps of the shutdown/boot sequence (generation gen)
	bootTimers  []Timer // follow-ups of a boot, valid while no other boot happens
	transitions []Transition
	changed     chan struct{}
	closed      bool
	autoReboot  bool // packages need another reboot
	clearKeys   bool // keys due to clear once WinRM is back
	serviced    bool // the last boot serviced packages
	// workerUntil is when TiWorker.exe stops (zero: not running).
	workerUntil time.Time
}

// servicingWorkerRunning reports whether TiWorker.exe runs now.
func (p *powerMachine) servicingWorkerRunning() bool {
	if !p.serving() {
		return false
	}
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.clock.Now().Before(p.workerUntil)
}

func (p *powerMachine) init(m *Machine) {
	p.m = m
	p.changed = make(chan struct{})
	p.listener = wsman.ListenerRefused
}

// enterLocked records a new state. Call with m.mu held.
func (p *powerMachine) enterLocked(s PowerState, reason string) {
	p.state = s
	p.transitions = append(p.transitions, Transition{State: s, At: p.m.clock.Now(), Boot: len(p.m.st.Boots), Reason: reason})
	close(p.changed)
	p.changed = make(chan struct{})
	p.m.logf("power: %s (%s)", s, reason)
}

func listenerFor(s PowerState, o *PowerOptions) wsman.ListenerState {
	switch s {
	case StateServicingOnShutdown:
		return o.Drop
	case StateOff:
		return o.Off
	case StateBooting:
		return o.Boot
	}
	return wsman.ListenerUp
}

// setListener drives the listener. Call with transMu held, m.mu not held.
func (p *powerMachine) setListener(ls wsman.ListenerState) {
	if ls == p.listener {
		return
	}
	p.listener = ls
	if p.pc != nil {
		p.pc.SetListenerState(ls)
	}
}

// enter sets the listener for s, then records s: whoever waits for a
// state (WaitState, WaitBoots) finds the listener already in it (Up
// answers, Off refuses). Call with transMu held.
func (p *powerMachine) enter(s PowerState, reason string) {
	p.setListener(listenerFor(s, &p.m.opts.Power))
	p.m.mu.Lock()
	p.enterLocked(s, reason)
	p.m.mu.Unlock()
}

// after runs f after d within the current generation: at once when d is
// not positive, else from a timer. Call with transMu held; f runs with
// transMu held.
func (p *powerMachine) after(d time.Duration, f func()) {
	if d <= 0 {
		f()
		return
	}
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	if p.closed {
		return
	}
	gen := p.gen
	t := p.m.clock.AfterFunc(d, func() {
		p.transMu.Lock()
		defer p.transMu.Unlock()
		p.m.mu.Lock()
		stale := p.closed || p.gen != gen
		p.m.mu.Unlock()
		if !stale {
			f()
		}
	})
	p.timers = append(p.timers, t)
}

// cancelTimers starts a new generation: pending steps of the old one do
// not run. Call with transMu held.
func (p *powerMachine) cancelTimers() {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	p.gen++
	for _, t := range p.timers {
		t.Stop()
	}
	p.timers = nil
}

// afterBoot runs f after d unless the machine has booted again (or was
// reset) in between; an aborted shutdown does not cancel it. Call with
// transMu held; f runs with transMu held.
func (p *powerMachine) afterBoot(d time.Duration, f func()) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	if p.closed {
		return
	}
	boot := len(p.m.st.Boots)
	t := p.m.clock.AfterFunc(d, func() {
		p.transMu.Lock()
		defer p.transMu.Unlock()
		p.m.mu.Lock()
		stale := p.closed || len(p.m.st.Boots) != boot || p.state == StateOff
		p.m.mu.Unlock()
		if !stale {
			f()
		}
	})
	p.bootTimers = append(p.bootTimers, t)
}

func (p *powerMachine) close() {
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.cancelTimers()
	p.m.mu.Lock()
	p.closed = true
	for _, t := range p.bootTimers {
		t.Stop()
	}
	p.bootTimers = nil
	p.m.mu.Unlock()
}

// startOff is New with StartOff.
func (p *powerMachine) startOff() {
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.kind = kindPowerOff
	p.enter(StateOff, "created powered off")
}

// startUp is New booting the disk at once.
func (p *powerMachine) startUp() {
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.boot(true)
}

// boot runs the boot; instant skips the durations (New).
func (p *powerMachine) boot(instant bool) {
	m := p.m
	m.mu.Lock()
	now := m.clock.Now()
	if n := len(m.st.Boots); n > 0 && !now.After(m.st.Boots[n-1]) {
		now = m.st.Boots[n-1].Add(time.Millisecond)
	}
	m.st.Boots = append(m.st.Boots, now)
	m.applyComputerNameLocked()
	p.serviced = m.anyPendingLocked()
	p.workerUntil = time.Time{}
	d, stillPending, clearKeys := m.bootServicingLocked(now)
	p.autoReboot = stillPending
	p.clearKeys = false
	if clearKeys {
		if m.opts.Power.KeysClearDelay > 0 {
			p.clearKeys = true
		} else {
			m.clearPendingKeysLocked()
		}
	}
	p.scheduled = false
	m.saveOrReportLocked("a restart")
	m.mu.Unlock()
	p.enter(StateBooting, "boot")
	if instant {
		p.winrmBack(true)
		return
	}
	p.after(m.opts.Power.BootTime+d, func() { p.winrmBack(false) })
}

func (p *powerMachine) winrmBack(instant bool) {
	o := &p.m.opts.Power
	p.m.mu.Lock()
	clearKeys := p.clearKeys
	p.clearKeys = false
	if p.serviced && (o.ServicingWorkerTime > 0 || clearKeys) {
		p.workerUntil = p.m.clock.Now().Add(max(o.ServicingWorkerTime, o.KeysClearDelay))
	}
	p.m.mu.Unlock()
	if clearKeys {
		p.afterBoot(o.KeysClearDelay, func() {
			p.m.mu.Lock()
			defer p.m.mu.Unlock()
			if p.m.clearPendingKeysLocked() {
				p.m.saveOrReportLocked("clearing the pending reboot keys")
				p.m.logf("servicing: pending reboot keys cleared")
			}
		})
	}
	if o.EarlyWinRM > 0 && !instant {
		p.enter(StateWinRMEarly, "WinRM started")
		p.after(o.EarlyWinRM, p.up)
		return
	}
	p.up()
}

func (p *powerMachine) up() {
	p.enter(StateUp, "booted")
	p.m.mu.Lock()
	auto := p.autoReboot
	p.m.mu.Unlock()
	if !auto {
		return
	}
	reboot := func() {
		p.m.mu.Lock()
		s, scheduled := p.state, p.scheduled
		p.m.mu.Unlock()
		if s == StateUp || s == StateWinRMEarly || s == StateShutdownPending && scheduled {
			p.kind = kindRestart
			p.beginShutdown("servicing needs another reboot")
		}
	}
	if d := p.m.opts.Power.AutoRebootDelay; d > 0 {
		p.afterBoot(d, reboot)
	} else {
		reboot()
	}
}

// beginShutdown initiates a shutdown of p.kind. Call with transMu held.
func (p *powerMachine) beginShutdown(reason string) {
	p.cancelTimers()
	p.m.mu.Lock()
	p.scheduled = false
	p.m.mu.Unlock()
	p.enter(StateShutdownPending, reason)
	p.after(p.m.opts.Power.ShutdownDelay, p.goDown)
}

func (p *powerMachine) goDown() {
	m := p.m
	p.enter(StateServicingOnShutdown, "WinRM stopped")
	if p.pc != nil {
		p.pc.DiscardShells()
	}
	m.killProcesses()
	m.mu.Lock()
	d := m.shutdownServicingLocked()
	m.mu.Unlock()
	p.after(m.opts.Power.ShutdownTime+d, p.off)
}

func (p *powerMachine) off() {
	p.enter(StateOff, "off")
	if p.kind == kindRestart {
		p.after(p.m.opts.Power.OffTime, func() { p.boot(false) })
	}
}

// serving reports whether commands run: Up, ShutdownPending, WinRMEarly.
func (p *powerMachine) serving() bool {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.state == StateUp || p.state == StateShutdownPending || p.state == StateWinRMEarly
}

// request asks for a shutdown of kind after delay, as shutdown.exe does:
// 0, or ErrorShutdownScheduled / ErrorShutdownInProgress.
func (p *powerMachine) request(kind shutdownKind, delay time.Duration, reason string) Errno {
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.m.mu.Lock()
	s, scheduled := p.state, p.scheduled
	p.m.mu.Unlock()
	switch {
	case s == StateShutdownPending && scheduled:
		return ErrorShutdownScheduled
	case s != StateUp && s != StateWinRMEarly:
		return ErrorShutdownInProgress
	}
	p.kind = kind
	if delay <= 0 {
		p.beginShutdown(reason)
		return 0
	}
	p.cancelTimers()
	p.m.mu.Lock()
	p.scheduled = true
	p.m.mu.Unlock()
	p.enter(StateShutdownPending, fmt.Sprintf("scheduled in %s: %s", delay, reason))
	p.after(delay, func() { p.beginShutdown(reason) })
	return 0
}

// abort is `shutdown /a`: 0, or ErrorNoShutdownInProgress when no
// countdown runs.
func (p *powerMachine) abort() Errno {
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.m.mu.Lock()
	s, scheduled := p.state, p.scheduled
	p.m.mu.Unlock()
	if s != StateShutdownPending || !scheduled {
		return ErrorNoShutdownInProgress
	}
	p.cancelTimers()
	p.m.mu.Lock()
	p.scheduled = false
	p.m.mu.Unlock()
	p.enter(StateUp, "shutdown aborted")
	return 0
}

// SetPowerControl connects the WinRM listener; it is set at once to what
// the current state requires.
func (m *Machine) SetPowerControl(pc wsman.PowerControl) {
	p := &m.power
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.pc = pc
	m.mu.Lock()
	ls := listenerFor(p.state, &m.opts.Power)
	m.mu.Unlock()
	p.listener = ls
	if pc != nil {
		pc.SetListenerState(ls)
	}
}

// State is the current power state.
func (m *Machine) State() PowerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.power.state
}

// Transitions is the power history since New.
func (m *Machine) Transitions() []Transition {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Transition(nil), m.power.transitions...)
}

// Boots are the boot times of the disk, oldest first (they survive a new
// Machine on the same StateDir).
func (m *Machine) Boots() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]time.Time(nil), m.st.Boots...)
}

// BootCount is len(Boots()).
func (m *Machine) BootCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.st.Boots)
}

// BootTime is the last boot time (LastBootUpTime); zero before the first
// boot.
func (m *Machine) BootTime() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.st.Boots); n > 0 {
		return m.st.Boots[n-1]
	}
	return time.Time{}
}

// WaitState waits until the machine is in state s or has passed through
// it since the call.
func (m *Machine) WaitState(ctx context.Context, s PowerState) error {
	m.mu.Lock()
	start := len(m.power.transitions)
	m.mu.Unlock()
	return m.waitFor(ctx, func() bool {
		if m.power.state == s {
			return true
		}
		for _, t := range m.power.transitions[start:] {
			if t.State == s {
				return true
			}
		}
		return false
	}, fmt.Sprintf("state %s", s))
}

// WaitBoots waits until the disk has booted n times and the machine is Up.
func (m *Machine) WaitBoots(ctx context.Context, n int) error {
	return m.waitFor(ctx, func() bool { return len(m.st.Boots) >= n && m.power.state == StateUp }, fmt.Sprintf("boot %d", n))
}

// waitFor waits until cond (called with m.mu held) holds.
func (m *Machine) waitFor(ctx context.Context, cond func() bool, what string) error {
	for {
		m.mu.Lock()
		ok := cond()
		ch := m.power.changed
		s := m.power.state
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("winsim: waiting for %s (now %s): %w", what, s, ctx.Err())
		}
	}
}

// Reboot makes Windows restart now, as if it decided to (shutdown /r /t 0
// by itself), from Up, WinRMEarly or a scheduled shutdown.
func (m *Machine) Reboot() error {
	p := &m.power
	p.transMu.Lock()
	defer p.transMu.Unlock()
	m.mu.Lock()
	s, scheduled := p.state, p.scheduled
	m.mu.Unlock()
	if s != StateUp && s != StateWinRMEarly && !(s == StateShutdownPending && scheduled) {
		return fmt.Errorf("winsim: Reboot in state %s", s)
	}
	p.kind = kindRestart
	p.beginShutdown("reboot requested by the test")
	return nil
}

// Reset is a hard reset from any state: connections drop, processes die,
// no shutdown servicing runs; the machine is off for OffTime and boots.
func (m *Machine) Reset() {
	p := &m.power
	p.transMu.Lock()
	defer p.transMu.Unlock()
	p.cancelTimers()
	p.kind = kindRestart
	if p.listener == wsman.ListenerUp || p.listener == wsman.ListenerUnavailable {
		p.setListener(m.opts.Power.Drop)
	}
	if p.pc != nil {
		p.pc.DiscardShells()
	}
	m.killProcesses()
	p.enter(StateOff, "hard reset")
	p.after(m.opts.Power.OffTime, func() { p.boot(false) })
}

// PowerOn boots a machine that is off.
func (m *Machine) PowerOn() error {
	p := &m.power
	p.transMu.Lock()
	defer p.transMu.Unlock()
	m.mu.Lock()
	s := p.state
	m.mu.Unlock()
	if s != StateOff {
		return fmt.Errorf("winsim: PowerOn in state %s", s)
	}
	p.cancelTimers()
	p.kind = kindRestart
	p.boot(false)
	return nil
}

// CreateFault is the fault a WinRM Create (shell) request gets now, or
// nil: 0x800703FA during WinRMEarly with PowerOptions.EarlyCreateFault.
// The WinRM server may consult it through an interface assertion.
func (m *Machine) CreateFault() *wsman.CommandFault {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.power.state == StateWinRMEarly && m.opts.Power.EarlyCreateFault {
		return &wsman.CommandFault{Code: 0x800703FA, Message: "Illegal operation attempted on a registry key that has been marked for deletion."}
	}
	return nil
}

// power is agent.Power.
type power struct{ m *Machine }

func (p power) BootTime() (time.Time, error) { return p.m.BootTime(), nil }

func (p power) Restart(delay time.Duration, reason string) error {
	if e := p.m.power.request(kindRestart, delay, reason); e != 0 {
		return e
	}
	return nil
}

func (p power) PowerOff(delay time.Duration, reason string) error {
	if e := p.m.power.request(kindPowerOff, delay, reason); e != 0 {
		return e
	}
	return nil
}

// ServicingWorkerRunning reports whether the Windows Modules Installer
// worker (TiWorker.exe) runs now (PowerOptions.ServicingWorkerTime).
func (m *Machine) ServicingWorkerRunning() bool { return m.power.servicingWorkerRunning() }
