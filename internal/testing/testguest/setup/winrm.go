package setup

import "github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"

// WinRMPort and WinRMHTTPSPort are the WinRM service's default ports.
const (
	WinRMPort      = 5985
	WinRMHTTPSPort = 5986
)

// Power shuts the guest down or restarts it, as Windows does after
// shutdown.exe or sysprep: services stop, the state is saved, then the
// machine powers off (QEMU exits) or resets (same QEMU process).
type Power interface {
	PowerOff(reason string)
	Restart(reason string)
}

// WinRMConfig is what the WinRM service starts with: the configuration
// Setup's FirstLogonCommands and cloudbase-init left behind, which
// commands over WinRM go on changing.
type WinRMConfig struct {
	// Model is the service's configuration (the state's); the service
	// listens, authenticates and requires encryption as it says, and
	// follows its changes.
	Model *winsim.WinRMConfig
	// Users maps the accounts Setup created to their passwords.
	Users map[string]string
	// LocalAccountTokenFilterPolicy is the registry value of that name.
	LocalAccountTokenFilterPolicy bool
	ComputerName                  string
	// State and StateRoot are the installed Windows (StateRoot is where
	// its volume is mounted) for a simulated Windows that runs commands;
	// SaveState persists State.
	State     *State
	StateRoot string
	// StateDevice is the partition node StateRoot is mounted from: the
	// disk whose free space Optimize-Volume -ReTrim discards.
	StateDevice string
	SaveState   func() error
	Power       Power
	Log         *Log
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

// NewWinRMService returns the WinRM service the stand-in runs: the
// WS-Management server of internal/testing/testguest/wsman on the simulated Windows
// of internal/testing/testguest/winsim (testguest.Guest).
var NewWinRMService = NewSimulatedWinRM
