package setup

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// WinRMPort is the WinRM HTTP port.
const WinRMPort = 5985

// Power shuts the guest down or restarts it, as Windows does after
// shutdown.exe or sysprep: services stop, the state is saved, then the
// machine powers off (QEMU exits) or resets (same QEMU process).
type Power interface {
	PowerOff(reason string)
	Restart(reason string)
}

// WinRMConfig is what the WinRM service starts with: the configuration
// Setup's FirstLogonCommands left behind.
type WinRMConfig struct {
	// Addr is the address to listen on, ":5985".
	Addr string
	// Users maps the accounts Setup created to their passwords.
	Users            map[string]string
	Basic            bool
	AllowUnencrypted bool
	// LocalAccountTokenFilterPolicy is the registry value of that name.
	LocalAccountTokenFilterPolicy bool
	ComputerName                  string
	// State and StateRoot are the installed Windows (StateRoot is where
	// its volume is mounted) for a simulated Windows that runs commands;
	// SaveState persists State.
	State     *State
	StateRoot string
	SaveState func() error
	Power     Power
	Log       *Log
}

// WinRMService is the guest's WinRM service. The stand-in starts it only
// when the answer file's FirstLogonCommands enabled WinRM.
type WinRMService interface {
	// Name says which implementation runs, for the console log.
	Name() string
	// Start listens and serves until Stop.
	Start(cfg WinRMConfig) error
	// Stop closes the listener and every connection.
	Stop() error
}

// NewWinRMService returns the WinRM service the stand-in runs. It is the
// one place to switch to the real server (internal/testguest/wsman driven by
// the simulated Windows of internal/testguest/winsim) once both exist.
var NewWinRMService = func() WinRMService { return &placeholderWinRM{} }

// PlaceholderBody is what the placeholder listener answers every HTTP
// request with (status 503).
const PlaceholderBody = "winbake-standin: placeholder listener on the WinRM port; the stand-in's WinRM server is not wired in yet\n"

// placeholderWinRM listens on the WinRM port so tests can see that WinRM
// would be up, and answers every request with 503 and PlaceholderBody. It
// speaks no WS-Management.
type placeholderWinRM struct {
	srv *http.Server
}

func (p *placeholderWinRM) Name() string {
	return "placeholder listener (not a WinRM server)"
}

func (p *placeholderWinRM) Start(cfg WinRMConfig) error {
	if p.srv != nil {
		return errors.New("already started")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	p.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Winbake-Standin", "placeholder")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(PlaceholderBody))
		}),
	}
	go func() { _ = p.srv.Serve(ln) }()
	return nil
}

func (p *placeholderWinRM) Stop() error {
	if p.srv == nil {
		return nil
	}
	err := p.srv.Close()
	p.srv = nil
	return err
}
