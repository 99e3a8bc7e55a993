package testguest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// AgentPath is where winbake installs its agent in the guest; New puts
// the agent's file there, so `C:\ProgramData\winbake\winbake-agent.exe`
// runs agent.Main in-process.
const AgentPath = `C:\ProgramData\winbake\winbake-agent.exe`

// DefaultAgentImage is the content of AgentPath unless Options.AgentImage
// says otherwise: what runs is agent.Main, whatever the file holds.
var DefaultAgentImage = []byte("MZ winbake-agent (stand-in: runs agent.Main in-process)\r\n")

// Default account and listen address.
const (
	DefaultUser     = "vagrant"
	DefaultPassword = "vagrant"
	DefaultAddr     = "127.0.0.1:0"
)

// Options configure a Guest. Zero values take the defaults of winsim and
// wsman, and DefaultUser, DefaultPassword and DefaultAddr.
type Options struct {
	// StateDir is the machine's disk (winsim.Options.StateDir); required.
	// A Guest on an existing StateDir continues from it.
	StateDir string
	// Addr is the HTTP listener's address (host:port, port 0 for any).
	Addr string
	// TLSAddr, when set, adds an HTTPS listener with a self-signed
	// certificate (wsman.Server.ListenTLS), or TLSCertificate.
	TLSAddr string
	// TLSCertificate is the HTTPS listener's certificate and key.
	TLSCertificate *tls.Certificate
	// User and Password are the local account WinRM accepts.
	User, Password string
	// Accounts are more local accounts WinRM accepts (name: password),
	// e.g. the ones cloudbase-init created; each must exist on the
	// machine (winsim.Machine.LocalAccounts).
	Accounts map[string]string
	// ComputerName, Windows, Drives, Packages, Power, Clock,
	// QuietModuleLoad and StartOff are the winsim.Options of the same
	// names.
	ComputerName    string
	Windows         winsim.Windows
	Drives          []string
	Packages        []winsim.Package
	Power           winsim.PowerOptions
	Clock           winsim.Clock
	QuietModuleLoad bool
	StartOff        bool
	// WinRM is the simulated Windows' WinRM configuration
	// (winsim.Options.WinRM). With it, Start serves what it says instead
	// of Addr and TLSAddr, and the server follows every change a command
	// makes (see serveWinRM); WinRMChanged is called after each.
	// WinRMListenAddr maps a listener's port to the address it listens on
	// (default ":<port>"; tests pass "127.0.0.1:0").
	WinRM           *winsim.WinRMConfig
	WinRMChanged    func()
	WinRMListenAddr func(port int) string
	// SystemDisk is winsim.Options.SystemDisk: the disk C: lives on, for
	// Optimize-Volume -ReTrim.
	SystemDisk winsim.SystemDisk
	// AgentImage is the content of the agent's file at AgentPath
	// (default DefaultAgentImage). It is written when the file is absent,
	// or always when AgentImage is set.
	AgentImage []byte
	// Server holds the other WinRM server options (timeouts, quotas,
	// ActivityID, ...). Its Users, ComputerName and Failf are set from
	// this Options.
	Server wsman.Options
	// Failf receives what the stand-in does not understand, from the
	// simulated Windows and the WinRM server alike (tests: t.Errorf;
	// StartForTest sets it). Default: log.Printf.
	Failf func(format string, args ...any)
	// Logf, when set, receives a line per command and power transition.
	Logf func(format string, args ...any)
}

// Guest is the stand-in Windows guest: a simulated Windows (Machine)
// behind a WinRM server (Server), wired together.
type Guest struct {
	// Machine is the simulated Windows; tests use it to set up files,
	// observe the registry and drive power (Reboot, Reset, PowerOn,
	// WaitBoots, WaitState).
	Machine *winsim.Machine
	// Server is the WinRM service; tests use it to inject faults
	// (Inject, SetLatency, SetKeepAliveRequests) and count requests.
	Server *wsman.Server

	opts  Options
	winrm winrmServing

	mu      sync.Mutex
	started bool
	closed  bool
}

// New creates the machine (booted unless Options.StartOff) and its WinRM
// server, with the agent installed at AgentPath. It does not listen yet:
// see Start.
func New(opts Options) (*Guest, error) {
	if opts.StateDir == "" {
		return nil, errors.New("testguest: Options.StateDir is required")
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	g := &Guest{opts: opts}
	var changed func()
	if opts.WinRM != nil {
		changed = g.winrmChanged
	}
	m, err := winsim.New(winsim.Options{
		StateDir:        opts.StateDir,
		ComputerName:    opts.ComputerName,
		Users:           []string{opts.User},
		Windows:         opts.Windows,
		Drives:          opts.Drives,
		Packages:        opts.Packages,
		Power:           opts.Power,
		Clock:           opts.Clock,
		Agent:           agent.Main,
		Failf:           opts.Failf,
		Logf:            opts.Logf,
		QuietModuleLoad: opts.QuietModuleLoad,
		StartOff:        opts.StartOff,
		WinRM:           opts.WinRM,
		WinRMChanged:    changed,
		SystemDisk:      opts.SystemDisk,
	})
	if err != nil {
		return nil, err
	}
	if err := installAgent(m, opts.AgentImage); err != nil {
		m.Close()
		return nil, err
	}
	so := opts.Server
	so.Users = map[string]string{opts.User: opts.Password}
	for name, password := range opts.Accounts {
		so.Users[name] = password
	}
	// NTLM challenges carry the NetBIOS name: the machine's, truncated as
	// NetBIOS truncates it.
	if so.ComputerName == "" {
		so.ComputerName = strings.ToUpper(m.ComputerName())
		if len(so.ComputerName) > 15 {
			so.ComputerName = so.ComputerName[:15]
		}
	}
	if opts.Failf != nil {
		so.Failf = opts.Failf
	}
	// Windows refuses the logon of an account whose password must be
	// changed first, whatever the password.
	if so.LogonRefused == nil {
		so.LogonRefused = m.PasswordMustChange
	}
	// The server sees the Machine's optional CreateFault (wsman.CreateFaulter)
	// through the Host it is given.
	if opts.WinRM != nil {
		_, so.Auth, so.RejectUnencrypted, _ = opts.WinRM.Endpoints()
	}
	s := wsman.New(m, so)
	if opts.TLSCertificate != nil {
		if err := s.SetTLSCertificate(*opts.TLSCertificate); err != nil {
			m.Close()
			return nil, err
		}
	}
	m.SetPowerControl(s)
	g.Machine, g.Server = m, s
	return g, nil
}

var _ wsman.CreateFaulter = (*winsim.Machine)(nil)

func installAgent(m *winsim.Machine, image []byte) error {
	if image == nil {
		if _, err := m.FS().Stat(AgentPath); err == nil {
			return nil
		}
		image = DefaultAgentImage
	}
	if err := m.FS().WriteFile(AgentPath, image); err != nil {
		return fmt.Errorf("testguest: installing the agent: %w", err)
	}
	return nil
}

// Start opens the listeners (Options.Addr, and Options.TLSAddr when set).
// While the machine is off or booting they follow its power state.
func (g *Guest) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("testguest: Start after Close")
	}
	if g.started {
		return errors.New("testguest: started twice")
	}
	g.started = true
	if g.opts.WinRM != nil {
		g.mu.Unlock()
		err := g.serveWinRM()
		g.mu.Lock()
		return err
	}
	if err := g.Server.Listen(g.opts.Addr); err != nil {
		return fmt.Errorf("testguest: WinRM listener: %w", err)
	}
	if g.opts.TLSAddr != "" {
		if err := g.Server.ListenTLS(g.opts.TLSAddr); err != nil {
			return fmt.Errorf("testguest: WinRM HTTPS listener: %w", err)
		}
	}
	return nil
}

// Close stops the WinRM server (connections closed, running commands
// terminated) and the machine (timers stopped, processes killed). The
// disk stays in StateDir.
func (g *Guest) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	err := g.Server.Close()
	if merr := g.Machine.Close(); merr != nil && err == nil {
		err = merr
	}
	return err
}

// Addr is the HTTP listener's address, host:port ("" before Start).
func (g *Guest) Addr() string { return g.Server.Addr() }

// TLSAddr is the HTTPS listener's address ("" without one).
func (g *Guest) TLSAddr() string { return g.Server.TLSAddr() }

// HostPort splits Addr for clients that take them apart (masterzen's
// Endpoint, Packer's Config).
func (g *Guest) HostPort() (string, int) {
	h, p, err := net.SplitHostPort(g.Addr())
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// Credentials are the account WinRM accepts.
func (g *Guest) Credentials() (user, password string) { return g.opts.User, g.opts.Password }
