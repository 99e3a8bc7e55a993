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
	reWinRMQuickconfig = regexp.MustCompile(`(?i)\bwinrm(\.cmd)?\s+(quickconfig|qc)\b`)
	reWinRMSet         = regexp.MustCompile(`(?i)\bwinrm(\.cmd)?\s+(set|s)\s+['"]?winrm/config/(service(/auth)?)['"]?\s+['"]?@\{(.*)\}`)
	reSCConfig         = regexp.MustCompile(`(?i)\bsc(\.exe)?\s+config\s+"?winrm"?\s+start=\s*"?([a-z-]+)`)
	reSCStart          = regexp.MustCompile(`(?i)(\bsc(\.exe)?\s+start\s+"?winrm\b|\bnet(\.exe)?\s+start\s+"?winrm\b|\bstart-service\s+(-name\s+)?"?winrm\b)`)
	reFirewallAdd      = regexp.MustCompile(`(?i)\bnetsh(\.exe)?\s+advfirewall\s+firewall\s+add\s+rule\b`)
	reLocalPort5985    = regexp.MustCompile(`(?i)\blocalport=5985\b`)
	reActionAllow      = regexp.MustCompile(`(?i)\baction=allow\b`)
	reRuleName         = regexp.MustCompile(`(?i)\bname=("[^"]*"|\S+)`)
	reRegAdd           = regexp.MustCompile(`(?i)\breg(\.exe)?\s+add\s+"?(\S+?)"?\s+/v\s+"?([^"\s]+)"?(?:\s+/t\s+\S+)?\s+/d\s+"?([^"\s]*)"?`)
	reNetProfile       = regexp.MustCompile(`(?i)set-netconnectionprofile\b.*-networkcategory\s+'?"?(\w+)`)
	reShutdown         = regexp.MustCompile(`(?i)(^|[\s\\/"])shutdown(\.exe)?\s+(.*)$`)
	reShutdownDelay    = regexp.MustCompile(`(?i)[/-]t\s+(\d+)`)
	reSysprep          = regexp.MustCompile(`(?i)\bsysprep(\.exe)?"?\s+(.*)$`)
	reKeyValue         = regexp.MustCompile(`(\w+)\s*=\s*"([^"]*)"`)
)

// Interpret runs a command as the stand-in understands it, changing s. The
// stand-in knows winbake's WinRM enablement (internal/unattend's
// guest/enable-winrm.cmd): winrm quickconfig, winrm set, sc config/start
// WinRM, netsh advfirewall rules, reg add, Set-NetConnectionProfile; and
// shutdown /s, shutdown /r and sysprep. Anything else is recorded only.
func Interpret(s *State, line string) Outcome {
	if s.Registry == nil {
		s.Registry = map[string]string{}
	}
	switch {
	case reWinRMQuickconfig.MatchString(line):
		s.WinRM.Listener = true
		s.WinRM.Started = true
		if s.WinRM.StartMode == "" || s.WinRM.StartMode == "demand" || s.WinRM.StartMode == "disabled" {
			s.WinRM.StartMode = "delayed-auto"
		}
		s.Firewall = appendOnce(s.Firewall, "Windows Remote Management (HTTP-In) tcp/5985")
		return Outcome{Understood: true, Summary: "WinRM HTTP listener on 5985 created, service started (delayed-auto), firewall exception added"}
	case reWinRMSet.MatchString(line):
		m := reWinRMSet.FindStringSubmatch(line)
		scope := strings.ToLower(m[3])
		var changed []string
		for _, kv := range reKeyValue.FindAllStringSubmatch(m[5], -1) {
			on := strings.EqualFold(kv[2], "true")
			switch {
			case scope == "service" && strings.EqualFold(kv[1], "AllowUnencrypted"):
				s.WinRM.AllowUnencrypted = on
			case scope == "service/auth" && strings.EqualFold(kv[1], "Basic"):
				s.WinRM.Basic = on
			default:
				s.Registry["winrm/config/"+scope+"/"+kv[1]] = kv[2]
			}
			changed = append(changed, "winrm/config/"+scope+" "+kv[1]+"="+kv[2])
		}
		return Outcome{Understood: true, Summary: "set " + strings.Join(changed, ", ")}
	case reSCConfig.MatchString(line):
		mode := strings.ToLower(reSCConfig.FindStringSubmatch(line)[2])
		s.WinRM.StartMode = mode
		return Outcome{Understood: true, Summary: "WinRM start type " + mode}
	case reSCStart.MatchString(line):
		s.WinRM.Started = true
		return Outcome{Understood: true, Summary: "WinRM service started"}
	case reFirewallAdd.MatchString(line):
		name := "rule"
		if m := reRuleName.FindStringSubmatch(line); m != nil {
			name = strings.Trim(m[1], `"`)
		}
		if reLocalPort5985.MatchString(line) && reActionAllow.MatchString(line) {
			name += " tcp/5985"
		}
		s.Firewall = appendOnce(s.Firewall, name)
		return Outcome{Understood: true, Summary: "firewall rule " + strconv.Quote(name) + " added"}
	case reRegAdd.MatchString(line):
		m := reRegAdd.FindStringSubmatch(line)
		key := m[2] + `\` + m[3]
		s.Registry[key] = m[4]
		if strings.EqualFold(m[3], "LocalAccountTokenFilterPolicy") {
			s.WinRM.LocalAccountTokenFilterPolicy = m[4] == "1"
		}
		return Outcome{Understood: true, Summary: "registry " + key + " = " + m[4]}
	case reNetProfile.MatchString(line):
		s.NetworkCategory = reNetProfile.FindStringSubmatch(line)[1]
		return Outcome{Understood: true, Summary: "network category " + s.NetworkCategory}
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

// WinRMReachable reports whether the WinRM service answers on 5985 at
// boot: a listener exists, the service starts automatically (or was just
// started), and a firewall rule allows 5985. The reason says why not.
func (s *State) WinRMReachable(justStarted bool) (bool, string) {
	w := s.WinRM
	if !w.Listener {
		return false, "no WinRM listener is configured (winrm quickconfig never ran)"
	}
	switch {
	case justStarted && w.Started:
	case w.StartMode == "auto" || w.StartMode == "delayed-auto":
	default:
		return false, "the WinRM service is not started (start type " + strconv.Quote(w.StartMode) + ")"
	}
	for _, r := range s.Firewall {
		if strings.HasSuffix(r, "tcp/5985") {
			return true, ""
		}
	}
	return false, "the firewall blocks TCP 5985"
}
