package setup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// WinsimStateDir is where the simulated Windows keeps its disk (files,
// registry, servicing) on the installed Windows volume.
const WinsimStateDir = "winbake/winsim"

// simulatedWinRM is the stand-in's real WinRM service: testguest.Guest, the
// WS-Management server of package wsman running commands on the simulated
// Windows of package winsim, whose disk lives on the installed Windows
// volume. When the simulated Windows shuts down or restarts, the guest does.
type simulatedWinRM struct {
	g      *testguest.Guest
	cancel context.CancelFunc
	state  *State
	cfg    WinRMConfig
}

// NewSimulatedWinRM returns the testguest (wsman + winsim) WinRM service.
func NewSimulatedWinRM() WinRMService { return &simulatedWinRM{} }

func (s *simulatedWinRM) Name() string {
	return "WS-Management server on the simulated Windows"
}

// windowsFor describes the installed image as winsim records it.
func windowsFor(st *State) winsim.Windows {
	w := winsim.DefaultWindows
	if st == nil || st.Image.EditionID == "" {
		return w
	}
	w.EditionID = st.Image.EditionID
	edition := strings.TrimSuffix(strings.TrimPrefix(w.EditionID, "Server"), "Core")
	w.ProductName = "Windows Server 2022 " + edition
	w.InstallationType = "Server"
	if strings.HasSuffix(st.Image.EditionID, "Core") {
		w.InstallationType = "Server Core"
	}
	return w
}

func (s *simulatedWinRM) Start(cfg WinRMConfig) error {
	if s.g != nil {
		return errors.New("already started")
	}
	// WinRM's account is the build account Setup logged on with.
	user := ""
	if cfg.State != nil {
		user = cfg.State.AutoLogon.Username
	}
	if user == "" {
		for name := range cfg.Users {
			user = name
			break
		}
	}
	password, ok := cfg.Users[user]
	if !ok {
		for name, pw := range cfg.Users {
			if strings.EqualFold(name, user) {
				password, ok = pw, true
			}
		}
	}
	if !ok {
		return errors.New("no account to log on to WinRM with")
	}
	// The accounts cloudbase-init created log on too, unless the
	// simulated Windows refuses them (a password that must change first).
	accounts := map[string]string{}
	if cfg.State != nil {
		for _, a := range cfg.State.Accounts {
			if a.CloudbaseInit && !strings.EqualFold(a.Name, user) {
				accounts[a.Name] = a.Password
			}
		}
	}
	logf := func(format string, args ...any) { cfg.Log.Printf("winrm", format, args...) }
	var disk winsim.SystemDisk
	if cfg.StateDevice != "" {
		disk = systemDisk{partition: cfg.StateDevice, mounted: cfg.StateRoot}
	}
	g, err := testguest.New(testguest.Options{
		StateDir:     filepath.Join(cfg.StateRoot, WinsimStateDir),
		User:         user,
		Password:     password,
		Accounts:     accounts,
		ComputerName: cfg.ComputerName,
		Windows:      windowsFor(cfg.State),
		SystemDisk:   disk,
		// A restart passes through Off for this long before winsim boots
		// again, which tells a restart from a power-off.
		Power:        winsim.PowerOptions{OffTime: 500 * time.Millisecond},
		WinRM:        cfg.Model,
		WinRMChanged: s.reconfigure,
		Failf:        func(format string, args ...any) { logf("not understood: "+format, args...) },
		Logf:         logf,
	})
	if err != nil {
		return err
	}
	s.cfg = cfg
	// The QEMU guest agent Setup's first logon installed.
	if cfg.State != nil && cfg.State.QemuGuestAgent && !g.Machine.QemuGuestAgentInstalled() {
		if err := g.Machine.InstallQemuGuestAgent(); err != nil {
			_ = g.Close()
			return err
		}
	}
	if err := g.Start(); err != nil {
		_ = g.Close()
		return err
	}
	s.g = g
	if err := s.listening(); err != nil {
		_ = g.Close()
		s.g = nil
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.state = cancel, cfg.State
	go s.watchPower(ctx, g.Machine, cfg)
	return nil
}

// watchPower turns the simulated Windows' shutdowns into the guest's.
func (s *simulatedWinRM) watchPower(ctx context.Context, m *winsim.Machine, cfg WinRMConfig) {
	if err := m.WaitState(ctx, winsim.StateOff); err != nil {
		return
	}
	restart := false
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := m.WaitState(wctx, winsim.StateBooting); err == nil {
		restart = true
	}
	cancel()
	if ctx.Err() != nil || cfg.Power == nil {
		return
	}
	if m.Generalized() && cfg.State != nil {
		cfg.State.Sysprep = "generalized"
	}
	if restart {
		cfg.Power.Restart("restart requested over WinRM")
		return
	}
	cfg.Power.PowerOff("shutdown requested over WinRM")
}

func (s *simulatedWinRM) Stop() error {
	if s.g == nil {
		return nil
	}
	s.cancel()
	// Record the simulated Windows' servicing in the stand-in's state.
	if st := s.state; st != nil {
		st.InstalledPackages = nil
		for _, p := range s.g.Machine.Packages() {
			st.InstalledPackages = append(st.InstalledPackages, p.Identity+" ("+p.State+")")
		}
		st.PendingReboot = s.g.Machine.RebootPending()
		if s.g.Machine.QemuGuestAgentInstalled() {
			st.QemuGuestAgent = true
		}
	}
	err := s.g.Close()
	s.g = nil
	return err
}

// listening logs what WinRM serves on the console.
func (s *simulatedWinRM) listening() error {
	served, notes := s.g.WinRMServing()
	for _, n := range notes {
		s.cfg.Log.Printf("winrm", "not served: %s", n)
	}
	if len(served) == 0 {
		return errors.New("no listener is reachable: " + strings.Join(notes, "; "))
	}
	var basic, unencrypted bool
	_ = s.g.Machine.WinRM(func(c *winsim.WinRMConfig) error {
		basic, unencrypted = c.Auth.Basic, c.AllowUnencrypted
		return nil
	})
	s.cfg.Log.Line(fmt.Sprintf("%s%s (%s; Basic=%t, AllowUnencrypted=%t)", WinRMListeningPrefix, strings.Join(served, ", "), s.Name(), basic, unencrypted))
	return nil
}

// reconfigure follows a change of the configuration made by a command
// over WinRM (the server has followed it already): the console says what
// WinRM now serves, and the state is saved, as Windows keeps the change.
func (s *simulatedWinRM) reconfigure() {
	if s.g == nil {
		return
	}
	if err := s.listening(); err != nil {
		s.cfg.Log.Printf("winrm", "%v", err)
	}
	if s.cfg.SaveState != nil {
		_ = s.g.Machine.WinRM(func(*winsim.WinRMConfig) error {
			if err := s.cfg.SaveState(); err != nil {
				s.cfg.Log.Printf("winrm", "saving the state: %v", err)
			}
			return nil
		})
	}
}
