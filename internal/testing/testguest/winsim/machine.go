package winsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// AgentFunc is winbake-agent's entry point (agent.Main), run in-process
// when a command starts winbake-agent.exe.
type AgentFunc func(ctx context.Context, sys agent.System, args []string, stdin io.Reader, stdout, stderr io.Writer) uint32

// Windows describes the installed Windows.
type Windows struct {
	ProductName      string `json:"product_name"`      // "Windows Server 2022 Datacenter"
	EditionID        string `json:"edition_id"`        // "ServerDatacenter"
	InstallationType string `json:"installation_type"` // "Server", "Server Core", "Client"
	Build            int    `json:"build"`             // 20348
	UBR              int    `json:"ubr"`               // update build revision, 2700
	DisplayVersion   string `json:"display_version"`   // "21H2"
}

// Version is the version string `ver` shows: 10.0.<build>.<ubr>.
func (w Windows) Version() string { return fmt.Sprintf("10.0.%d.%d", w.Build, w.UBR) }

// DefaultWindows is Windows Server 2022 Datacenter.
var DefaultWindows = Windows{
	ProductName:      "Windows Server 2022 Datacenter",
	EditionID:        "ServerDatacenter",
	InstallationType: "Server",
	Build:            20348,
	UBR:              2700,
	DisplayVersion:   "21H2",
}

// Options configure a Machine.
type Options struct {
	// StateDir holds the machine's disk: files under fs/<drive>/ and the
	// registry and servicing state in state.json. A Machine created on an
	// existing StateDir continues from it, as a booted disk does.
	StateDir string
	// ComputerName is the host name (default "WIN-SIMULATED"), used only
	// when StateDir is new.
	ComputerName string
	// Users are the local accounts; the first is the user of the
	// agent.System view (default "Administrator"). A profile
	// (C:\Users\<user>) is created on the user's first logon.
	Users []string
	// Windows is the installed version (default DefaultWindows), used only
	// when StateDir is new.
	Windows Windows
	// Drives are drive letters besides C (e.g. "E" for a CD with the
	// agent); their roots exist and start empty.
	Drives []string
	// Packages is the servicing catalog: the update packages the test
	// knows and how Windows reacts to each.
	Packages []Package
	// Power sets the durations and listener behaviour of shutdowns and
	// boots.
	Power PowerOptions
	// Clock is the time source (default RealClock).
	Clock Clock
	// Agent is run for winbake-agent.exe; nil reports any attempt to run it.
	Agent AgentFunc
	// Failf reports what the stand-in does not understand (tests pass
	// t.Errorf). Default: log.Printf. Every report is also kept, see
	// Unsupported.
	Failf func(format string, args ...any)
	// Logf, when set, receives a line per command and power transition.
	Logf func(format string, args ...any)
	// QuietModuleLoad stops PowerShell's "Preparing modules for first
	// use." progress record (written as CLIXML on stderr by the first
	// module command of a process whose $ProgressPreference is not
	// SilentlyContinue).
	QuietModuleLoad bool
	// SystemDisk is the disk C: lives on, for Optimize-Volume -ReTrim;
	// nil for a machine without one (the cmdlet is then not modelled).
	SystemDisk SystemDisk
	// StartOff leaves the machine powered off; PowerOn boots it.
	// Otherwise New boots it at once (without passing through the
	// listener states).
	StartOff bool
	// WinRM is the WinRM service's configuration, which winrm.cmd,
	// netsh.exe, certutil.exe, PowerShell's Cert: drive and
	// cloudbase-init change (see WinRMConfig); nil reports every use of
	// them. The caller keeps it (the stand-in keeps it in its state) and
	// is told of every change through WinRMChanged.
	WinRM        *WinRMConfig
	WinRMChanged func()
}

var (
	_ wsman.Host   = (*Machine)(nil)
	_ agent.System = (*Machine)(nil)
)

const stateFormat = 1

// machineState is what survives on disk (StateDir/state.json).
type machineState struct {
	Format       int                          `json:"format"`
	ComputerName string                       `json:"computer_name"`
	Windows      Windows                      `json:"windows"`
	Boots        []time.Time                  `json:"boots"`
	Registry     map[string]*regKey           `json:"registry"`
	Packages     map[string]*InstalledPackage `json:"packages"`
	Failures     map[string]int               `json:"failures"`
	SystemEnv    []envVar                     `json:"system_env"`
	Profiles     []string                     `json:"profiles"`
	Generalized  bool                         `json:"generalized"`
	Accounts     []LocalAccount               `json:"accounts,omitempty"`
}

// Machine is the simulated Windows: file system, registry, servicing stack,
// power states, and the programs WinRM commands run. It implements
// wsman.Host (Start) and agent.System.
type Machine struct {
	opts    Options
	clock   Clock
	files   *Files
	catalog []*Package
	// catalogMu guards catalog, which grows as synthetic package files
	// are read (pkgfile.go).
	catalogMu sync.Mutex

	mu          sync.Mutex
	winrmMu     sync.Mutex // guards *opts.WinRM
	st          machineState
	unsupported []string
	procs       map[int]context.CancelFunc
	nextProc    int
	running     sync.WaitGroup // processes started by Start

	power powerMachine
}

// New creates the machine, or loads it from an existing StateDir.
func New(opts Options) (*Machine, error) {
	if opts.StateDir == "" {
		return nil, errors.New("winsim: Options.StateDir is required")
	}
	if opts.ComputerName == "" {
		opts.ComputerName = "WIN-SIMULATED"
	}
	if len(opts.Users) == 0 {
		opts.Users = []string{"Administrator"}
	}
	if opts.Windows == (Windows{}) {
		opts.Windows = DefaultWindows
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if err := opts.Power.check(); err != nil {
		return nil, err
	}
	catalog, err := normalizeCatalog(opts.Packages)
	if err != nil {
		return nil, err
	}
	m := &Machine{
		opts:    opts,
		clock:   opts.Clock,
		files:   &Files{root: filepath.Join(opts.StateDir, "fs")},
		catalog: catalog,
		procs:   map[int]context.CancelFunc{},
	}
	m.power.init(m)
	for _, d := range append([]string{"C"}, opts.Drives...) {
		if len(d) != 1 || !isLetter(d[0]) {
			return nil, fmt.Errorf("winsim: drive %q is not a letter", d)
		}
		if err := os.MkdirAll(filepath.Join(m.files.root, strings.ToUpper(d)), 0o755); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(m.statePath())
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &m.st); err != nil {
			return nil, fmt.Errorf("winsim: %s: %w", m.statePath(), err)
		}
		if m.st.Format != stateFormat {
			return nil, fmt.Errorf("winsim: %s: state format %d, want %d", m.statePath(), m.st.Format, stateFormat)
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := m.install(); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if opts.StartOff {
		m.power.startOff()
	} else {
		m.power.startUp()
	}
	return m, nil
}

func (m *Machine) statePath() string { return filepath.Join(m.opts.StateDir, "state.json") }

// saveLocked writes the state atomically. Call with m.mu held.
func (m *Machine) saveLocked() error {
	data, err := json.MarshalIndent(&m.st, "", " ")
	if err != nil {
		return err
	}
	tmp := m.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, m.statePath())
}

// saveOrReportLocked saves the state where nobody could handle the error
// (a timer, a boot): a failed save is logged loudly, since the simulated
// Windows would then forget what it did at its next start.
func (m *Machine) saveOrReportLocked(what string) {
	if err := m.saveLocked(); err != nil {
		m.logf("ERROR: saving the machine state after %s: %v", what, err)
	}
}

// Close stops the machine's timers, kills its running processes and waits
// (up to 10 s) for them to end. The state stays on disk.
func (m *Machine) Close() error {
	m.power.close()
	m.killProcesses()
	done := make(chan struct{})
	go func() { m.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("winsim: processes still running 10s after Close")
	}
}

// install lays down a freshly installed Windows.
func (m *Machine) install() error {
	m.st = machineState{
		Format:       stateFormat,
		ComputerName: m.opts.ComputerName,
		Windows:      m.opts.Windows,
		Registry:     map[string]*regKey{},
		Packages:     map[string]*InstalledPackage{},
		Failures:     map[string]int{},
	}
	for _, d := range []string{
		`C:\Windows\Temp`, `C:\Windows\Logs\DISM`, `C:\Windows\Logs\CBS`,
		`C:\Windows\System32\Sysprep\Panther`, `C:\Windows\Panther`,
		`C:\ProgramData`, `C:\Program Files\Common Files`, `C:\Program Files (x86)\Common Files`,
		`C:\Users\Public`, `C:\Users\Default\AppData\Local\Temp`,
	} {
		if err := m.files.MkdirAll(d); err != nil {
			return err
		}
	}
	for _, p := range builtinPrograms {
		if err := m.files.WriteFile(p, []byte("MZ simulated "+p)); err != nil {
			return err
		}
	}
	name := m.st.ComputerName
	w := m.st.Windows
	cv := `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
	sz := func(key, n, v string) { m.setValueLocked(key, RegValue{Name: n, Type: RegSZ, String: v}) }
	dw := func(key, n string, v uint32) {
		m.setValueLocked(key, RegValue{Name: n, Type: RegDWORD, Number: uint64(v)})
	}
	sz(cv, "ProductName", w.ProductName)
	sz(cv, "EditionID", w.EditionID)
	sz(cv, "InstallationType", w.InstallationType)
	sz(cv, "CurrentBuild", fmt.Sprint(w.Build))
	sz(cv, "CurrentBuildNumber", fmt.Sprint(w.Build))
	sz(cv, "CurrentVersion", "6.3")
	sz(cv, "DisplayVersion", w.DisplayVersion)
	sz(cv, "ReleaseId", "2009")
	sz(cv, "SystemRoot", `C:\Windows`)
	dw(cv, "UBR", uint32(w.UBR))
	dw(cv, "CurrentMajorVersionNumber", 10)
	dw(cv, "CurrentMinorVersionNumber", 0)
	sz(`HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName`, "ComputerName", strings.ToUpper(name))
	sz(`HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName`, "ComputerName", strings.ToUpper(name))
	sz(`HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`, "Hostname", name)
	sz(`HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`, "NV Hostname", name)
	m.regKeyLocked(hklm, strings.Split(cbsKey[len(`HKLM\`):]+`\Packages`, `\`), true)
	m.regKeyLocked(hklm, strings.Split(wuAUKey[len(`HKLM\`):], `\`), true)
	sz(setupStateKey, "ImageState", "IMAGE_STATE_COMPLETE")
	m.st.SystemEnv = append(m.st.SystemEnv, defaultSystemEnv(name)...)
	for _, p := range m.catalog {
		if p.Preinstalled {
			m.markInstalledLocked(p, m.clock.Now())
		}
	}
	return m.saveLocked()
}

func defaultSystemEnv(name string) []envVar {
	return []envVar{
		{"ALLUSERSPROFILE", `C:\ProgramData`},
		{"CommonProgramFiles", `C:\Program Files\Common Files`},
		{"CommonProgramFiles(x86)", `C:\Program Files (x86)\Common Files`},
		{"CommonProgramW6432", `C:\Program Files\Common Files`},
		{"COMPUTERNAME", strings.ToUpper(name)},
		{"ComSpec", `C:\Windows\system32\cmd.exe`},
		{"DriverData", `C:\Windows\System32\Drivers\DriverData`},
		{"NUMBER_OF_PROCESSORS", "2"},
		{"OS", "Windows_NT"},
		{"Path", `C:\Windows\system32;C:\Windows;C:\Windows\System32\Wbem;C:\Windows\System32\WindowsPowerShell\v1.0\;C:\Windows\System32\OpenSSH\`},
		{"PATHEXT", ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC"},
		{"PROCESSOR_ARCHITECTURE", "AMD64"},
		{"PROCESSOR_IDENTIFIER", "AMD64 Family 25 Model 1 Stepping 1, AuthenticAMD"},
		{"PROCESSOR_LEVEL", "25"},
		{"PROCESSOR_REVISION", "0101"},
		{"ProgramData", `C:\ProgramData`},
		{"ProgramFiles", `C:\Program Files`},
		{"ProgramFiles(x86)", `C:\Program Files (x86)`},
		{"ProgramW6432", `C:\Program Files`},
		{"PSModulePath", `%ProgramFiles%\WindowsPowerShell\Modules;C:\Windows\system32\WindowsPowerShell\v1.0\Modules`},
		{"PUBLIC", `C:\Users\Public`},
		{"SystemDrive", "C:"},
		{"SystemRoot", `C:\Windows`},
		{"TEMP", `C:\Windows\TEMP`},
		{"TMP", `C:\Windows\TEMP`},
		{"windir", `C:\Windows`},
	}
}

// ComputerName is the host name (`hostname`); COMPUTERNAME is its upper case.
func (m *Machine) ComputerName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.ComputerName
}

// WindowsVersion is the installed Windows, UBR updated by installed packages.
func (m *Machine) WindowsVersion() Windows {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Windows
}

// Generalized reports whether sysprep /generalize has run.
func (m *Machine) Generalized() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Generalized
}

// Files is the file system (agent.Files).
func (m *Machine) Files() agent.Files { return m.files }

// FS is the file system with its extra methods (ReadFile, WriteFile, ...).
func (m *Machine) FS() *Files { return m.files }

// Registry is the registry as the first user sees it (agent.Registry).
func (m *Machine) Registry() agent.Registry { return m.RegistryFor(m.opts.Users[0]) }

// RegistryFor is the registry with HKCU bound to user.
func (m *Machine) RegistryFor(user string) *Registry { return &Registry{m: m, user: user} }

// Processes runs the simulated programs as a WinRM (network logon)
// process of the first user does (agent.Processes).
func (m *Machine) Processes() agent.Processes { return m.system(logonNetwork).Processes() }

// Power is the machine's power control (agent.Power).
func (m *Machine) Power() agent.Power { return m.system(logonNetwork).Power() }

// ConsoleSystem is the machine as a program of an interactive (console)
// logon sees it: there wusa.exe installs instead of failing with 5.
func (m *Machine) ConsoleSystem() agent.System { return m.system(logonInteractive) }

// Unsupported lists what the stand-in was asked and did not understand,
// in order (each also went to Options.Failf).
func (m *Machine) Unsupported() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.unsupported...)
}

// unsupportedf reports something the stand-in does not understand.
func (m *Machine) unsupportedf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.mu.Lock()
	m.unsupported = append(m.unsupported, msg)
	m.mu.Unlock()
	if m.opts.Failf != nil {
		m.opts.Failf("winsim: unsupported: %s", msg)
	} else {
		log.Printf("winsim: unsupported: %s", msg)
	}
}

func (m *Machine) logf(format string, args ...any) {
	if m.opts.Logf != nil {
		m.opts.Logf("winsim: "+format, args...)
	}
}

// userName strips a domain or computer prefix (`WIN\vagrant`, `.\vagrant`,
// `vagrant@host`).
func userName(u string) string {
	if i := strings.LastIndexByte(u, '\\'); i >= 0 {
		u = u[i+1:]
	}
	if i := strings.IndexByte(u, '@'); i >= 0 {
		u = u[:i]
	}
	return u
}

// knownUser returns the account's name as configured.
func (m *Machine) knownUser(u string) (string, bool) {
	u = userName(u)
	for _, x := range m.opts.Users {
		if strings.EqualFold(x, u) {
			return x, true
		}
	}
	return u, false
}

// logon loads the user's profile, creating it on first logon.
func (m *Machine) logon(user string) error {
	m.mu.Lock()
	for _, p := range m.st.Profiles {
		if strings.EqualFold(p, user) {
			m.mu.Unlock()
			return nil
		}
	}
	m.mu.Unlock()
	home := `C:\Users\` + user
	for _, d := range []string{`AppData\Local\Temp`, `AppData\Roaming`, `AppData\Local\Microsoft\WindowsApps`, `Desktop`, `Documents`} {
		if err := m.files.MkdirAll(home + `\` + d); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.Profiles = append(m.st.Profiles, user)
	return m.saveLocked()
}

// environment is a new process's environment for user; noProfile is
// WINRS_NOPROFILE (no user profile: TEMP is the system's).
func (m *Machine) environment(user string, noProfile bool) *envBlock {
	m.mu.Lock()
	env := &envBlock{vars: append([]envVar(nil), m.st.SystemEnv...)}
	name := m.st.ComputerName
	m.mu.Unlock()
	env.set("USERDOMAIN", strings.ToUpper(name))
	env.set("USERNAME", user)
	if noProfile {
		env.set("USERPROFILE", `C:\Users\Default`)
		return env
	}
	home := `C:\Users\` + user
	env.set("USERPROFILE", home)
	env.set("APPDATA", home+`\AppData\Roaming`)
	env.set("LOCALAPPDATA", home+`\AppData\Local`)
	env.set("TEMP", home+`\AppData\Local\Temp`)
	env.set("TMP", home+`\AppData\Local\Temp`)
	p, _ := env.get("Path")
	env.set("Path", p+";"+home+`\AppData\Local\Microsoft\WindowsApps`)
	return env
}

// track registers a running process so that a shutdown can kill it.
func (m *Machine) track(cancel context.CancelFunc) (untrack func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextProc++
	id := m.nextProc
	m.procs[id] = cancel
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.procs, id)
	}
}

func (m *Machine) killProcesses() {
	m.mu.Lock()
	var cancels []context.CancelFunc
	for id, c := range m.procs {
		cancels = append(cancels, c)
		delete(m.procs, id)
	}
	m.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}
