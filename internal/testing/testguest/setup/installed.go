package setup

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// installed is one boot of the installed Windows.
type installed struct {
	g     *Guest
	st    *State
	dev   string // the Windows partition's node
	winrm WinRMService
	mu    sync.Mutex
	down  bool
}

// Installed boots the installed Windows: it finds its volume, runs the
// remaining Setup passes, starts the services and idles (it returns only on
// an error).
func (g *Guest) Installed() (err error) {
	start := time.Now()
	g.Modprobe(InboxModules...)
	// The boot disk's storage driver is in the driver store: Setup could
	// not have installed to the disk without it.
	g.Modprobe("virtio_blk", "virtio_scsi")
	found := mountWindowsVolume(WaitDevices(500*time.Millisecond, 5*time.Second))
	if found == "" {
		return &Error{Pass: "boot", Message: "INACCESSIBLE_BOOT_DEVICE: your PC ran into a problem and needs to restart.",
			Details: []string{"no disk partition holds the stand-in's installed Windows (" + StatePath + ")"}}
	}
	// Errors from here on are Setup's on the installed system: they go to
	// C:\Windows\Panther\setuperr.log too.
	defer func() {
		if err != nil {
			if werr := AppendSetupErr(windowsRoot, "[setup]", "%v", err); werr != nil {
				g.Log.Printf("setup", "writing setuperr.log: %v", werr)
			}
		}
	}()
	st, err := LoadState(windowsRoot)
	if err != nil {
		return err
	}
	st.Boots++
	g.Log.Printf("windows", "booting Windows from %s (boot %d, phase %s, %s)", found, st.Boots, st.Phase, st.Image.Name)
	w := &installed{g: g, st: st, dev: found}
	save := func() error { return st.Save(windowsRoot) }
	if st.Sysprep == "generalized" {
		if err := specializeAgain(st); err != nil {
			return err
		}
	}
	var power *PowerAction
	setupRan := false
	if st.Phase == PhaseSpecialize || st.Phase == PhaseOOBE {
		setupRan = true
		raw, err := os.ReadFile(filepath.Join(windowsRoot, PantherPath))
		if err != nil {
			return err
		}
		ans, err := ParseAnswer(`C:\Windows\Panther\unattend.xml`, raw)
		if err != nil {
			return err
		}
		if st.Phase == PhaseSpecialize {
			w.specialize(ans)
			st.Phase = PhaseOOBE
			if err := save(); err != nil {
				return err
			}
		}
		power = w.oobe(ans)
		st.Phase = PhaseComplete
		st.Note("Setup complete")
		if err := save(); err != nil {
			return err
		}
		g.Log.Printf("setup", "specialize and oobeSystem took %s", time.Since(start).Round(time.Millisecond))
		g.Log.Line(SetupCompleteLine)
	} else if err := save(); err != nil {
		return err
	}
	w.services(setupRan)
	g.Log.Line(ReadyLine)
	if power != nil {
		w.after(*power)
	}
	Idle()
	return nil
}

// mountWindowsVolume mounts the partition that holds the stand-in's
// installed Windows at windowsRoot and returns its node ("" when no disk
// has one).
func mountWindowsVolume(devs []BlockDevice) string {
	for _, d := range devs {
		if d.Kind != "disk" {
			continue
		}
		for _, part := range Partitions(d.Name) {
			if err := Mount(part, windowsRoot, "vfat", false, "iocharset=utf8,shortname=mixed"); err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(windowsRoot, StatePath)); err == nil {
				return part
			}
			_ = Unmount(windowsRoot)
		}
	}
	return ""
}

// specializeAgain sets a generalized image back to the specialize pass.
func specializeAgain(st *State) error {
	st.Sysprep = ""
	st.Phase = PhaseSpecialize
	st.Note("generalized image: specialize and oobeSystem run again")
	// sysprep's /unattend answer file replaces the one cached at
	// installation for these passes (winsim.SysprepAnswerFile).
	sysprepAnswer := filepath.Join(windowsRoot, WinsimStateDir, winsim.SysprepAnswerFile)
	if b, err := os.ReadFile(sysprepAnswer); err == nil {
		if err := os.WriteFile(filepath.Join(windowsRoot, PantherPath), b, 0o644); err != nil {
			return err
		}
		if err := os.Remove(sysprepAnswer); err != nil {
			return err
		}
		st.Note("sysprep's /unattend answer file is the cached answer file now")
	}
	return nil
}

func (w *installed) specialize(ans *Answer) {
	log := func(format string, args ...any) { w.g.Log.Printf("setup: specialize", format, args...) }
	name := ans.ComputerName
	if name == "" || name == "*" {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := randomBytes(11)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		name = "WIN-" + string(b)
	}
	w.st.ComputerName = strings.ToUpper(name)
	log("computer name %s", w.st.ComputerName)
	tz := ans.TimeZone
	if tz == "" {
		tz = "Pacific Standard Time"
	}
	if !unattend.IsTimeZone(tz) {
		log("time zone %q is not a Windows time zone ID; keeping Pacific Standard Time", tz)
		if err := AppendSetupErr(windowsRoot, "[Shell Unattend]", "TimeZone %q is not a valid time zone ID; the default is kept. [0x80070057]", tz); err != nil {
			log("writing setuperr.log: %v", err)
		}
		tz = "Pacific Standard Time"
	}
	w.st.TimeZone = tz
	log("time zone %s", tz)
	for _, c := range ans.SpecializeCommands {
		w.g.runCommand(w.st, "specialize", c)
	}
	w.st.Note("specialize: computer name %s, time zone %s", w.st.ComputerName, tz)
	log("complete")
}

// oobe creates the accounts, logs on automatically and runs the
// FirstLogonCommands. It returns the last power action they asked for.
func (w *installed) oobe(ans *Answer) *PowerAction {
	log := func(format string, args ...any) { w.g.Log.Printf("setup: oobeSystem", format, args...) }
	for _, a := range ans.Accounts {
		exists := false
		for i, have := range w.st.Accounts {
			if strings.EqualFold(have.Name, a.Name) {
				w.st.Accounts[i] = a
				exists = true
			}
		}
		if !exists {
			w.st.Accounts = append(w.st.Accounts, a)
		}
		if a.Builtin {
			log("Administrator password set")
		} else {
			log("local account %s created (group %s)", a.Name, a.Group)
		}
	}
	var power *PowerAction
	al := ans.AutoLogon
	switch {
	case al == nil || !al.Enabled:
		log("no automatic logon: Windows waits at the sign-in screen, FirstLogonCommands do not run")
	case !w.canLogOn(al.Username, al.Password):
		log("automatic logon as %s failed: the user name or password is incorrect; FirstLogonCommands do not run", al.Username)
		if err := AppendSetupErr(windowsRoot, "[Shell Unattend]", "AutoLogon: logon of %s failed: the user name or password is incorrect. [0x8007052e]", al.Username); err != nil {
			log("writing setuperr.log: %v", err)
		}
	default:
		w.st.AutoLogon.Username = al.Username
		w.st.AutoLogon.Remaining = al.LogonCount - 1
		log("%s logged on automatically", al.Username)
		var media []Medium
		opened := false
		for _, c := range ans.FirstLogonCommands {
			if usesMedia(c.CommandLine) && !opened {
				media, opened = w.g.openMediaLog(BlockDevices(), log), true
				defer closeMedia(media)
			}
			if usesMedia(c.CommandLine) {
				w.g.runMediaCommand(w.st, "oobeSystem", c, media)
				continue
			}
			if p := w.g.runCommand(w.st, "oobeSystem", c); p != nil {
				power = p
			}
		}
	}
	w.st.Note("oobeSystem: %d account(s), %d FirstLogonCommands", len(ans.Accounts), len(ans.FirstLogonCommands))
	log("complete")
	return power
}

func (w *installed) canLogOn(user, password string) bool {
	name := user
	if i := strings.LastIndex(name, `\`); i >= 0 {
		name = name[i+1:]
	}
	for _, a := range w.st.Accounts {
		if strings.EqualFold(a.Name, name) {
			return a.Password == password
		}
	}
	return false
}

// services starts the NIC drivers, the network and WinRM.
func (w *installed) services(justConfigured bool) {
	g := w.g
	if w.st.ComputerName != "" {
		_ = SetHostname(w.st.ComputerName)
	}
	for _, d := range w.st.Drivers {
		if m, ok := DriverModules[d]; ok && m == "virtio_net" {
			g.Modprobe(m)
		}
	}
	addr, err := g.Network()
	if err != nil {
		g.Log.Printf("network", "%v", err)
	} else {
		g.Log.Printf("network", "%s", addr)
	}
	if w.cloudbaseInit() {
		w.Restart("cloudbase-init")
	}
	w.qemuGuestAgent()
	ok, why := w.st.WinRMReachable(justConfigured)
	if !ok {
		g.Log.Line(WinRMNotStartedPrefix + why)
		return
	}
	// An account whose password must change first is refused by the
	// simulated Windows itself (winsim's PasswordMustChange).
	users := map[string]string{}
	for _, a := range w.st.Accounts {
		users[a.Name] = a.Password
	}
	svc := NewWinRMService()
	cfg := WinRMConfig{
		Model: &w.st.WinRM.WinRMConfig, Users: users,
		LocalAccountTokenFilterPolicy: w.st.WinRM.LocalAccountTokenFilterPolicy,
		ComputerName:                  w.st.ComputerName,
		State:                         w.st, StateRoot: windowsRoot, StateDevice: w.dev,
		SaveState: func() error { return w.st.Save(windowsRoot) },
		Power:     w, Log: g.Log,
	}
	if err := svc.Start(cfg); err != nil {
		g.Log.Line(WinRMNotStartedPrefix + err.Error())
		return
	}
	w.winrm = svc
}

// after carries out a shutdown or restart a FirstLogonCommand asked for.
func (w *installed) after(p PowerAction) {
	if p.Delay > 0 {
		w.g.Log.Printf("power", "%s scheduled in %s", map[bool]string{true: "restart", false: "shutdown"}[p.Restart], p.Delay)
		time.Sleep(p.Delay)
	}
	what := "shutdown.exe"
	if p.Sysprep {
		what = "sysprep"
	}
	if p.Restart {
		w.Restart(what)
	}
	w.PowerOff(what)
}

func (w *installed) halt(restart bool, reason string) {
	w.mu.Lock()
	if w.down {
		w.mu.Unlock()
		Idle()
	}
	w.down = true
	w.mu.Unlock()
	if w.winrm != nil {
		_ = w.winrm.Stop()
	}
	w.st.Note("%s (%s)", map[bool]string{true: "restart", false: "shutdown"}[restart], reason)
	_ = w.st.Save(windowsRoot)
	_ = Unmount(windowsRoot)
	if restart {
		w.g.Log.Line(RestartLine + " (" + reason + ")")
	} else {
		w.g.Log.Line(PowerOffLine + " (" + reason + ")")
	}
	Halt(restart)
}

// PowerOff implements Power.
func (w *installed) PowerOff(reason string) { w.halt(false, reason) }

// Restart implements Power.
func (w *installed) Restart(reason string) { w.halt(true, reason) }
