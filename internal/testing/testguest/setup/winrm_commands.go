package setup

import (
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// The first logon's WinRM commands run as winsim.WinRMConfig models
// winrm.cmd, netsh and certutil, on the state's configuration: the same
// code the simulated Windows runs them with over WinRM.

// toolArgs splits a first-logon command line, without a leading
// `cmd.exe /c`, into the program's base name (lower case, without
// extension) and its arguments.
func toolArgs(line string) (string, []string) {
	args := splitArgs(line)
	if len(args) >= 2 && strings.EqualFold(strings.TrimSuffix(strings.ToLower(filepath.Base(strings.ReplaceAll(args[0], `\`, "/"))), ".exe"), "cmd") &&
		strings.EqualFold(args[1], "/c") {
		args = args[2:]
	}
	if len(args) == 0 {
		return "", nil
	}
	name := strings.ToLower(filepath.Base(strings.ReplaceAll(args[0], `\`, "/")))
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".exe"), ".cmd")
	return name, args[1:]
}

// interpretWinRMTool runs winrm and netsh command lines; ok is false for
// other programs.
func interpretWinRMTool(s *State, line string) (Outcome, bool) {
	name, args := toolArgs(line)
	var out bytes.Buffer
	var code uint32
	var err error
	switch name {
	case "winrm":
		code, err = s.WinRM.RunWinrm(args, &out)
	case "netsh":
		code, err = s.WinRM.RunNetsh(args, &out)
	default:
		return Outcome{}, false
	}
	return toolOutcome(name, code, out.String(), err), true
}

func toolOutcome(name string, code uint32, out string, err error) Outcome {
	var nm *winsim.NotModelled
	if errors.As(err, &nm) {
		return Outcome{Summary: "not understood by the stand-in: " + err.Error() + "; recorded only"}
	}
	summary := strings.Join(strings.Fields(strings.ReplaceAll(out, "\r\n", " ")), " ")
	if err != nil {
		summary = err.Error()
	}
	if code != 0 {
		return Outcome{Understood: true, Summary: name + " failed (exit " + strconv.FormatUint(uint64(code), 10) + "): " + summary}
	}
	return Outcome{Understood: true, Summary: name + ": " + summary}
}

// reForIfExist is the drive search of enable-winrm-https.cmd:
//
//	cmd.exe /c for %d in (A B D ...) do @if exist %d:\file <command with %d>
//
// cmd.exe's for over a set with an if exist test ("for /?", "if /?"): for
// each letter whose drive holds the file, the command runs with the
// variable replaced.
var reForIfExist = regexp.MustCompile(`(?i)^\s*cmd(?:\.exe)?\s+/c\s+for\s+%([a-z])\s+in\s+\(([a-z\s]+)\)\s+do\s+@?if\s+exist\s+(\S+)\s+(.+)$`)

// usesForIfExist reports whether a first-logon command is that search.
func usesForIfExist(line string) bool { return reForIfExist.MatchString(line) }

// interpretForIfExist runs the search over the media: certutil -importpfx
// of a file found on a drive.
func interpretForIfExist(s *State, media []Medium, line string) Outcome {
	m := reForIfExist.FindStringSubmatch(line)
	v := "%" + m[1]
	var ran []string
	for _, letter := range strings.Fields(strings.ToUpper(m[2])) {
		file := strings.ReplaceAll(m[3], v, letter)
		if _, err := resolveMediaFile(media, file); err != nil {
			continue
		}
		cmd := strings.ReplaceAll(m[4], v, letter)
		name, args := toolArgs(cmd)
		if name != "certutil" {
			return Outcome{Summary: "not understood by the stand-in: " + cmd + " in a for loop; recorded only"}
		}
		var out, errw bytes.Buffer
		code, err := s.WinRM.RunCertutil(args, &out, &errw, func(path string) ([]byte, error) { return readMediaFile(media, path) })
		o := toolOutcome("certutil", code, out.String()+errw.String(), err)
		if !o.Understood {
			return o
		}
		ran = append(ran, letter+": "+o.Summary)
	}
	if len(ran) == 0 {
		return Outcome{Understood: true, Summary: "for: no drive holds " + m[3] + "; nothing ran"}
	}
	return Outcome{Understood: true, Summary: strings.Join(ran, "; ")}
}

// readMediaFile reads a file named by a Windows path (D:\dir\file) from
// the medium with that drive letter.
func readMediaFile(media []Medium, path string) ([]byte, error) {
	if _, err := resolveMediaFile(media, path); err != nil {
		return nil, err
	}
	letter := strings.ToUpper(path[:1])
	for _, m := range media {
		if m.Letter == letter {
			return m.ReadFile(path[2:])
		}
	}
	return nil, errors.New(path + ": no medium")
}
