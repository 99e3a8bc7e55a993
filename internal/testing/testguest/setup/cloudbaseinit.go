package setup

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// Where the cloudbase-init service sees the CDs it looks for a config
// drive on: copies of what CDFS finds on them (CopyCDView).
const cloudbaseMediaRoot = "/run/cloudbase-init"

// cloudbaseInit starts the cloudbase-init service when the simulated
// Windows has it installed with automatic start, as Windows starts it at
// boot: the CDs are read through CDFS for its ConfigDriveService, its
// serial log goes to the console (COM1), and the accounts it sets a
// password on become WinRM logons. It reports whether cloudbase-init asked
// for a reboot.
func (w *installed) cloudbaseInit() (reboot bool) {
	g := w.g
	dir := filepath.Join(windowsRoot, WinsimStateDir)
	// Opening the simulated Windows boots it (pending servicing advances):
	// only when cloudbase-init's program is on its disk.
	if !cloudbaseInitOnDisk(windowsRoot) {
		return false
	}
	logf := func(format string, args ...any) { g.Log.Printf("cloudbase-init", format, args...) }
	user := w.st.AutoLogon.Username
	if user == "" && len(w.st.Accounts) > 0 {
		user = w.st.Accounts[0].Name
	}
	if user == "" {
		user = "Administrator"
	}
	// ConfigWinRMListenerPlugin configures WinRM: the state's model.
	m, err := winsim.New(winsim.Options{
		StateDir: dir, Users: []string{user}, Windows: windowsFor(w.st), WinRM: &w.st.WinRM.WinRMConfig,
		Failf: func(format string, args ...any) { logf("not understood: "+format, args...) },
	})
	if err != nil {
		logf("opening the simulated Windows: %v", err)
		return false
	}
	defer m.Close()
	if _, automatic, ok := m.CloudbaseInitService(); !ok || !automatic {
		return false
	}
	// The CDs as Windows' CDFS reads them: their labels, and a copy of
	// what CDFS finds on them for cloudbase-init to read.
	var cds []winsim.Volume
	letter := 'D'
	for _, d := range BlockDevices() {
		if d.Kind != "cd" {
			continue
		}
		m, err := openCDDevice(d, string(letter))
		letter++
		if err != nil {
			logf("%s: no medium CDFS reads (%v)", m.Where(), err)
			continue
		}
		view := filepath.Join(cloudbaseMediaRoot, d.Name)
		err = CopyCDView(m, view, func(format string, args ...any) { logf("CDFS: "+format, args...) })
		m.Close()
		if err != nil {
			logf("%s (%s): %v", m.Where(), m.CD.Label(), err)
			continue
		}
		defer os.RemoveAll(view)
		cds = append(cds, winsim.Volume{Label: m.CD.Label(), Dir: view})
	}
	logf("service starting (%d CD(s) attached)", len(cds))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := m.RunCloudbaseInit(ctx, winsim.CloudbaseInitRun{Console: g.Log.Raw(), CDs: cds})
	if err != nil {
		logf("the service did not start: %v", err)
		return false
	}
	for name, password := range res.Passwords {
		if m.PasswordMustChange(name) {
			logf("account %s: the password must be changed at the next logon; Windows refuses its WinRM logon", name)
		}
		w.st.SetCloudbaseInitAccount(name, password)
	}
	if err := w.st.Save(windowsRoot); err != nil {
		logf("saving the state: %v", err)
	}
	return res.Reboot
}

// cloudbaseInitOnDisk reports whether cloudbase-init's program is on the
// simulated Windows of the volume mounted at root.
func cloudbaseInitOnDisk(root string) bool {
	_, err := os.Stat(filepath.Join(root, WinsimStateDir, "fs", "C", "Program Files", "Cloudbase Solutions", "Cloudbase-Init", "Python", "Scripts", "cloudbase-init.exe"))
	return err == nil
}

// SetCloudbaseInitAccount records an account cloudbase-init created or
// whose password it set, with that password.
func (s *State) SetCloudbaseInitAccount(name, password string) {
	for i, a := range s.Accounts {
		if strings.EqualFold(a.Name, name) {
			s.Accounts[i].Password, s.Accounts[i].CloudbaseInit = password, true
			return
		}
	}
	s.Accounts = append(s.Accounts, Account{Name: name, Password: password, Group: "Administrators", CloudbaseInit: true})
	s.Note("cloudbase-init: account %s", name)
}

// Raw is the console without the stand-in's prefix: what is written to it
// appears as it is (cloudbase-init's own serial log lines).
func (l *Log) Raw() io.Writer { return rawLog{l} }

type rawLog struct{ l *Log }

func (r rawLog) Write(p []byte) (int, error) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.l.w.Write(p)
}
