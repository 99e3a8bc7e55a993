package setup

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Commands of the first logon that read the attached media: msiexec
// installing virtio-win's QEMU guest agent MSI, pnputil adding a driver
// from the virtio-win CD. Windows resolves their drive letters against the
// media as it lettered them (CDs from D:, in device order).

var (
	reMsiexec = regexp.MustCompile(`(?i)^\s*(?:"?[a-z]:\\[^"]*\\)?msiexec(?:\.exe)?"?\s+(.*)$`)
	rePnputil = regexp.MustCompile(`(?i)^\s*(?:"?[a-z]:\\[^"]*\\)?pnputil(?:\.exe)?"?\s+(.*)$`)
)

// QemuGAMSI is the file name of virtio-win's QEMU guest agent package (in
// its guest-agent folder).
const QemuGAMSI = "qemu-ga-x86_64.msi"

// usesMedia reports whether a first-logon command reads the media.
func usesMedia(line string) bool {
	return reMsiexec.MatchString(line) || rePnputil.MatchString(line) || usesForIfExist(line)
}

// splitArgs splits a command line at blanks outside double quotes and
// drops the quotes.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case (r == ' ' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// resolveMediaFile finds a file named by a Windows path (D:\dir\file) on
// the medium with that drive letter; the error says why Windows would not.
func resolveMediaFile(media []Medium, path string) (MediaEntry, error) {
	p := strings.ReplaceAll(path, "/", `\`)
	if len(p) < 3 || p[1] != ':' {
		return MediaEntry{}, fmt.Errorf("%s: not a drive letter path", path)
	}
	letter := strings.ToUpper(p[:1])
	for _, m := range media {
		if m.Letter == letter {
			e, err := m.Stat(p[2:])
			if err == nil && e.IsDir {
				return MediaEntry{}, fmt.Errorf("%s: a folder, not a file", e.Path)
			}
			return e, err
		}
	}
	return MediaEntry{}, fmt.Errorf("%s: no medium in drive %s:", path, letter)
}

// InterpretWithMedia runs a first-logon command that reads the media
// (usesMedia), changing s: msiexec /i <qemu-ga-x86_64.msi> /qn installs the
// QEMU-GA service; pnputil /add-driver <inf> [/install] adds a driver to
// the driver store; a `for ... do @if exist` drive search runs certutil
// -importpfx from the drive that holds the file. Other packages and forms
// are not modelled.
func InterpretWithMedia(s *State, media []Medium, line string) Outcome {
	if m := reMsiexec.FindStringSubmatch(line); m != nil {
		return msiexecOutcome(s, media, splitArgs(m[1]))
	}
	if m := rePnputil.FindStringSubmatch(line); m != nil {
		return pnputilOutcome(s, media, splitArgs(m[1]))
	}
	if usesForIfExist(line) {
		return interpretForIfExist(s, media, line)
	}
	return Outcome{Summary: "not understood by the stand-in: recorded only"}
}

func msiexecOutcome(s *State, media []Medium, args []string) Outcome {
	var pkg string
	quiet := false
	for i := 0; i < len(args); i++ {
		la := strings.ToLower(args[i])
		switch {
		case la == "/i" && i+1 < len(args):
			i++
			pkg = args[i]
		case la == "/qn" || la == "/quiet":
			quiet = true
		case la == "/norestart":
		case strings.HasPrefix(la, "/l") && i+1 < len(args):
			i++ // the log goes to the guest's disk; the stand-in keeps none
		default:
			return Outcome{Summary: fmt.Sprintf("not understood by the stand-in: msiexec argument %q; recorded only", args[i])}
		}
	}
	if pkg == "" || !quiet {
		return Outcome{Summary: "not understood by the stand-in: msiexec without /i <package> and /qn; recorded only"}
	}
	if !strings.EqualFold(filepath.Base(strings.ReplaceAll(pkg, `\`, "/")), QemuGAMSI) {
		return Outcome{Summary: "not understood by the stand-in: msiexec /i " + pkg + " (only virtio-win's " + QemuGAMSI + " is modelled at first logon); recorded only"}
	}
	if _, err := resolveMediaFile(media, pkg); err != nil {
		// msiexec's ERROR_INSTALL_PACKAGE_OPEN_FAILED.
		return Outcome{Understood: true, Summary: "msiexec exit code 1619: " + pkg + " could not be opened (" + err.Error() + ")"}
	}
	s.QemuGuestAgent = true
	return Outcome{Understood: true, Summary: "QEMU Guest Agent installed from " + pkg + " (service QEMU-GA, automatic start)"}
}

func pnputilOutcome(s *State, media []Medium, args []string) Outcome {
	if len(args) < 2 || !strings.EqualFold(args[0], "/add-driver") {
		return Outcome{Summary: "not understood by the stand-in: pnputil other than /add-driver <inf> [/install]; recorded only"}
	}
	for _, a := range args[2:] {
		if !strings.EqualFold(a, "/install") {
			return Outcome{Summary: fmt.Sprintf("not understood by the stand-in: pnputil argument %q; recorded only", a)}
		}
	}
	inf := args[1]
	if strings.ContainsAny(inf, "*?") || !strings.EqualFold(filepath.Ext(inf), ".inf") {
		return Outcome{Summary: "not understood by the stand-in: pnputil /add-driver " + inf + " (one .inf file is modelled); recorded only"}
	}
	if _, err := resolveMediaFile(media, inf); err != nil {
		return Outcome{Understood: true, Summary: "pnputil: " + inf + ": the system cannot find the file specified; Total driver packages: 0 (" + err.Error() + ")"}
	}
	name := strings.ToLower(strings.TrimSuffix(filepath.Base(strings.ReplaceAll(inf, `\`, "/")), filepath.Ext(inf)))
	s.Drivers = appendOnce(s.Drivers, name)
	return Outcome{Understood: true, Summary: "driver package " + name + ".inf added to the driver store"}
}
