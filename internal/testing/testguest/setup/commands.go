package setup

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PowerAction is a shutdown or restart a command asked for.
type PowerAction struct {
	// Restart, or else power off.
	Restart bool
	// Delay is shutdown.exe's /t (30 s when not given).
	Delay time.Duration
	// Sysprep is set for sysprep's /shutdown or /reboot.
	Sysprep bool
}

// Outcome is what Interpret made of a command.
type Outcome struct {
	// Understood is false for commands the stand-in only records.
	Understood bool
	// Summary says what changed, e.g. "WinRM listener created".
	Summary string
	// Power is set when the command shuts down or restarts Windows.
	Power *PowerAction
}

var (
	reSCConfig      = regexp.MustCompile(`(?i)\bsc(\.exe)?\s+config\s+"?winrm"?\s+start=\s*"?([a-z-]+)`)
	reSCStart       = regexp.MustCompile(`(?i)(\bsc(\.exe)?\s+start\s+"?winrm\b|\bnet(\.exe)?\s+start\s+"?winrm\b|\bstart-service\s+(-name\s+)?"?winrm\b)`)
	reRegAdd        = regexp.MustCompile(`(?i)\breg(\.exe)?\s+add\s+"?(\S+?)"?\s+/v\s+"?([^"\s]+)"?(?:\s+/t\s+\S+)?\s+/d\s+"?([^"\s]*)"?`)
	reNetProfile    = regexp.MustCompile(`(?i)set-netconnectionprofile\b.*-networkcategory\s+'?"?(\w+)`)
	reShutdown      = regexp.MustCompile(`(?i)(^|[\s\\/"])shutdown(\.exe)?\s+(.*)$`)
	reShutdownDelay = regexp.MustCompile(`(?i)[/-]t\s+(\d+)`)
	reSysprep       = regexp.MustCompile(`(?i)\bsysprep(\.exe)?"?\s+(.*)$`)
)

// Interpret runs a command as the stand-in understands it, changing s. The
// stand-in knows winbake's WinRM enablement (internal/unattend's
// guest/enable-winrm.cmd and enable-winrm-https.cmd): winrm and netsh
// advfirewall as winsim.WinRMConfig models them, sc config/start WinRM,
// reg add, Set-NetConnectionProfile; and shutdown /s, shutdown /r and
// sysprep. The certificate import reads the media (InterpretWithMedia).
// Anything else is recorded only.
func Interpret(s *State, line string) Outcome {
	if s.Registry == nil {
		s.Registry = map[string]string{}
	}
	if out, ok := interpretWinRMTool(s, line); ok {
		return out
	}
	switch {
	case reSCConfig.MatchString(line):
		mode := strings.ToLower(reSCConfig.FindStringSubmatch(line)[2])
		s.WinRM.StartMode = mode
		return Outcome{Understood: true, Summary: "WinRM start type " + mode}
	case reSCStart.MatchString(line):
		s.WinRM.Started = true
		return Outcome{Understood: true, Summary: "WinRM service started"}
	case reRegAdd.MatchString(line):
		m := reRegAdd.FindStringSubmatch(line)
		key := m[2] + `\` + m[3]
		s.Registry[key] = m[4]
		if strings.EqualFold(m[3], "LocalAccountTokenFilterPolicy") {
			s.WinRM.LocalAccountTokenFilterPolicy = m[4] == "1"
		}
		return Outcome{Understood: true, Summary: "registry " + key + " = " + m[4]}
	case reNetProfile.MatchString(line):
		s.WinRM.NetworkCategory = reNetProfile.FindStringSubmatch(line)[1]
		return Outcome{Understood: true, Summary: "network category " + s.WinRM.NetworkCategory}
	case reSysprep.MatchString(line):
		args := strings.ToLower(reSysprep.FindStringSubmatch(line)[2])
		out := Outcome{Understood: true, Summary: "sysprep"}
		if strings.Contains(args, "/generalize") {
			s.Sysprep = "generalized"
			out.Summary += " /generalize: the next boot runs specialize and oobeSystem"
		}
		switch {
		case strings.Contains(args, "/shutdown"):
			out.Power = &PowerAction{Sysprep: true}
		case strings.Contains(args, "/reboot"):
			out.Power = &PowerAction{Sysprep: true, Restart: true}
		}
		return out
	case reShutdown.MatchString(line):
		args := strings.ToLower(reShutdown.FindStringSubmatch(line)[3])
		p := &PowerAction{Delay: 30 * time.Second}
		if m := reShutdownDelay.FindStringSubmatch(args); m != nil {
			n, _ := strconv.Atoi(m[1])
			p.Delay = time.Duration(n) * time.Second
		}
		switch {
		case hasSwitch(args, "r"), hasSwitch(args, "g"):
			p.Restart = true
		case hasSwitch(args, "s"), hasSwitch(args, "p"):
		default:
			return Outcome{Understood: true, Summary: "shutdown without /s or /r: nothing to do"}
		}
		if hasSwitch(args, "p") {
			p.Delay = 0
		}
		what := "shutdown"
		if p.Restart {
			what = "restart"
		}
		return Outcome{Understood: true, Summary: what + " in " + p.Delay.String(), Power: p}
	}
	return Outcome{Summary: "not understood by the stand-in: recorded only"}
}

func hasSwitch(args, sw string) bool {
	for _, f := range strings.Fields(args) {
		if f == "/"+sw || f == "-"+sw {
			return true
		}
	}
	return false
}

func appendOnce(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// WinRMReachable reports whether the WinRM service serves anything at
// boot: it starts automatically (or was just started), and a listener is
// enabled, let through by the firewall and, for HTTPS, has its
// certificate. The reason says why not.
func (s *State) WinRMReachable(justStarted bool) (bool, string) {
	w := s.WinRM
	if len(w.Listeners) == 0 {
		return false, "no WinRM listener is configured (winrm quickconfig never ran)"
	}
	switch {
	case justStarted && w.Started:
	case w.StartMode == "auto" || w.StartMode == "delayed-auto":
	default:
		return false, "the WinRM service is not started (start type " + strconv.Quote(w.StartMode) + ")"
	}
	eps, _, _, notes := w.Endpoints()
	if len(eps) == 0 {
		return false, strings.Join(notes, "; ")
	}
	return true, ""
}
