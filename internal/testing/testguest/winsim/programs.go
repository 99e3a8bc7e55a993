package winsim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const setupStateKey = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`

// SysprepAnswerFile is where, in the machine's state directory, sysprep
// /generalize keeps the answer file of its /unattend option for the next
// boot's Setup passes.
const SysprepAnswerFile = "sysprep-unattend.xml"

// runShutdown is shutdown.exe: /r, /g, /s, /p, /a with /f, /t N, /c "...",
// /d; exit 0, 1190 (already scheduled), 1115 (in progress), 1116 (/a with
// nothing to abort).
func (m *Machine) runShutdown(p *proc) uint32 {
	var action string
	delay := 30
	reason := ""
	bad := func(what string) uint32 {
		m.unsupportedf("shutdown.exe %s in %q", what, p.cmdline)
		p.print(p.stderr, "The parameter is incorrect.(87)\r\n")
		return 87
	}
	for i := 0; i < len(p.args); i++ {
		a := p.args[i]
		if len(a) < 2 || a[0] != '/' && a[0] != '-' {
			return bad(fmt.Sprintf("argument %q", a))
		}
		switch o := strings.ToLower(a[1:]); o {
		case "r", "g", "s", "p", "a":
			if action != "" {
				return bad("with two actions")
			}
			action = o
		case "f":
		case "t":
			if i+1 >= len(p.args) {
				return bad("/t without a time")
			}
			i++
			n, err := strconv.Atoi(p.args[i])
			if err != nil || n < 0 || n > 315360000 {
				return bad(fmt.Sprintf("/t %q", p.args[i]))
			}
			delay = n
		case "c":
			if i+1 >= len(p.args) || len(p.args[i+1]) > 512 {
				return bad("/c without a comment of at most 512 characters")
			}
			i++
			reason = p.args[i]
		case "d":
			if i+1 >= len(p.args) {
				return bad("/d without a reason code")
			}
			i++
		default:
			return bad(fmt.Sprintf("option %q", a))
		}
	}
	var e Errno
	switch action {
	case "a":
		e = m.power.abort()
	case "r", "g":
		e = m.power.request(kindRestart, time.Duration(delay)*m.opts.Power.ShutdownSecond, reason)
	case "s":
		e = m.power.request(kindPowerOff, time.Duration(delay)*m.opts.Power.ShutdownSecond, reason)
	case "p":
		e = m.power.request(kindPowerOff, 0, reason)
	default:
		return bad("without /r, /s, /p or /a")
	}
	if e != 0 {
		p.print(p.stderr, fmt.Sprintf("%s(%d)\r\n", e.Error(), uint32(e)))
	}
	return uint32(e)
}

// runSysprep is C:\Windows\System32\Sysprep\sysprep.exe with /oobe,
// optional /generalize, and /shutdown, /reboot or /quit. With /shutdown or
// /reboot it does not return: the shutdown ends it, as over WinRM.
func (m *Machine) runSysprep(p *proc) uint32 {
	var generalize, oobe bool
	var action, unattend string
	for _, a := range p.args {
		la := strings.ToLower(a)
		switch {
		case la == "/generalize":
			generalize = true
		case la == "/oobe":
			oobe = true
		case la == "/shutdown" || la == "/reboot" || la == "/quit":
			if action != "" {
				m.unsupportedf("sysprep.exe with two actions: %q", p.args)
				return 87
			}
			action = la[1:]
		case la == "/quiet" || la == "/mode:vm":
		case strings.HasPrefix(la, "/unattend:"):
			unattend = strings.Trim(a[len("/unattend:"):], `"`)
		default:
			m.unsupportedf("sysprep.exe argument not understood: %q", a)
			return 87
		}
	}
	if !oobe || action == "" {
		m.unsupportedf("sysprep.exe without /oobe and one of /shutdown, /reboot, /quit: %q", p.args)
		return 87
	}
	if unattend != "" {
		if ok, dir := p.files.exists(unattend); !ok || dir {
			m.unsupportedf("sysprep.exe /unattend:%s: the file does not exist (what sysprep does then is not modelled)", unattend)
			return 2
		}
	}
	log := sysprepLog{m}
	log.begin()
	m.mu.Lock()
	pending := m.anyPendingLocked()
	m.mu.Unlock()
	if pending {
		log.errorf("", "Sysprep_Clean_Validate_Opk: There are one or more Windows updates that require a reboot. To run Sysprep, reboot the computer and restart the application.[gle=0x000036b7]")
		log.end()
		return 1
	}
	// The Appx provider validates the generalize phase only (appx.go). A
	// failed validation changes nothing: the image state stays as it was
	// and sysprep may run again. The exit code of a failed run is not from
	// a capture; winbake reads the image state and setupact.log instead.
	if blocker := m.appxSysprepBlocker(); generalize && blocker != "" {
		log.appxBlocked(blocker)
		log.end()
		return 1
	}
	if err := sleep(p.ctx, m.clock, m.opts.Power.SysprepTime); err != nil {
		return 1
	}
	if generalize && unattend != "" {
		// The answer file the next boot's specialize and oobeSystem
		// passes apply instead of the one cached at installation ("Use
		// Answer Files with Sysprep": "you can specify a separate
		// Unattend.xml file by using the Sysprep /unattend:<file_name>
		// option"); the stand-in's Setup takes it from SysprepAnswerFile.
		data, err := p.files.ReadFile(unattend)
		if err == nil {
			err = os.WriteFile(filepath.Join(m.opts.StateDir, SysprepAnswerFile), data, 0o644)
		}
		if err != nil {
			m.unsupportedf("sysprep.exe /unattend:%s: keeping the answer file for the next boot: %v", unattend, err)
			return 1
		}
	}
	if generalize {
		m.mu.Lock()
		m.st.Generalized = true
		m.setValueLocked(setupStateKey, RegValue{Name: "ImageState", Type: RegSZ, String: "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"})
		m.saveOrReportLocked("sysprep /generalize")
		m.mu.Unlock()
	}
	log.end()
	var e Errno
	switch action {
	case "quit":
		return 0
	case "shutdown":
		e = m.power.request(kindPowerOff, 0, "sysprep")
	case "reboot":
		e = m.power.request(kindRestart, 0, "sysprep")
	}
	if e != 0 {
		return uint32(e)
	}
	<-p.ctx.Done()
	return 1
}
