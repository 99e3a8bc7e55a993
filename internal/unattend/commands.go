package unattend

import (
	_ "embed"
	"fmt"
	"strings"
)

// Command is one ordered command of a RunSynchronous or FirstLogonCommands
// list.
type Command struct {
	// Order is the 1-based position in its list.
	Order int
	// CommandLine is the command (the Path of a RunSynchronousCommand).
	CommandLine string
	// Description is shown in the Setup logs.
	Description string
}

//go:embed guest/enable-winrm.cmd
var enableWinRMScript string

// WinRMCommands returns the commands that enable WinRM over HTTP for the
// build (a guest behind a port forward on the host's loopback), parsed
// from the embedded guest/enable-winrm.cmd: one command per non-empty line;
// lines starting with REM or :: are comments, and a comment directly above a
// command becomes its Description. Orders are 1..n.
func WinRMCommands() []Command {
	return parseCommandScript(enableWinRMScript, "winbake: enable WinRM")
}

func parseCommandScript(text, fallbackDesc string) []Command {
	var out []Command
	lastComment := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" {
			lastComment = ""
			continue
		}
		if c, ok := commentText(line); ok {
			lastComment = c
			continue
		}
		desc := lastComment
		if desc == "" {
			desc = fmt.Sprintf("%s (step %d)", fallbackDesc, len(out)+1)
		}
		out = append(out, Command{Order: len(out) + 1, CommandLine: line, Description: desc})
		lastComment = ""
	}
	return out
}

// commentText reports whether line is a batch comment and returns its text.
func commentText(line string) (string, bool) {
	if strings.HasPrefix(line, "::") {
		return strings.TrimSpace(line[2:]), true
	}
	if len(line) >= 3 && strings.EqualFold(line[:3], "REM") && (len(line) == 3 || line[3] == ' ' || line[3] == '\t') {
		return strings.TrimSpace(line[3:]), true
	}
	return "", false
}

// FirstLogonCommands returns the commands run at the first logon of the
// build account: ExtraCommands first, in order, then s.WinRMCommands, so WinRM
// is enabled last and Packer does not connect to a half-configured machine.
func (s Settings) FirstLogonCommands() []Command {
	var out []Command
	for i, c := range s.ExtraCommands {
		out = append(out, Command{
			Order:       len(out) + 1,
			CommandLine: c,
			Description: fmt.Sprintf("winbake: %s[%d]", FieldExtraCommands, i),
		})
	}
	for _, c := range s.WinRMCommands() {
		c.Order = len(out) + 1
		out = append(out, c)
	}
	return out
}

// LabConfigValues are the HKLM\SYSTEM\Setup\LabConfig DWORDs set with
// Settings.BypassHardwareChecks.
var LabConfigValues = []string{"BypassTPMCheck", "BypassSecureBootCheck", "BypassRAMCheck"}

// WindowsPECommands returns the windowsPE RunSynchronous commands: the
// LabConfig keys when BypassHardwareChecks is set, otherwise none.
func (s Settings) WindowsPECommands() []Command {
	if !s.BypassHardwareChecks {
		return nil
	}
	var out []Command
	for _, v := range LabConfigValues {
		out = append(out, Command{
			Order:       len(out) + 1,
			CommandLine: `reg add HKLM\SYSTEM\Setup\LabConfig /v ` + v + ` /t REG_DWORD /d 1 /f`,
			Description: "winbake: bypass_hardware_checks (" + v + ")",
		})
	}
	return out
}

// SpecializeCommands returns the specialize RunSynchronous commands: firewall
// rules answering ICMPv4 and ICMPv6 echo requests when AllowICMP is set.
func (s Settings) SpecializeCommands() []Command {
	if !s.AllowICMP {
		return nil
	}
	return []Command{
		{
			Order:       1,
			CommandLine: `netsh advfirewall firewall add rule name="ICMPv4 echo request (winbake)" dir=in action=allow protocol=icmpv4:8,any profile=any`,
			Description: "winbake: allow_icmp (ICMPv4 echo)",
		},
		{
			Order:       2,
			CommandLine: `netsh advfirewall firewall add rule name="ICMPv6 echo request (winbake)" dir=in action=allow protocol=icmpv6:128,any profile=any`,
			Description: "winbake: allow_icmp (ICMPv6 echo)",
		},
	}
}

// DriverPaths returns the Windows PE driver folders: for every drive letter
// and driver, <drive>:\<driver>\<VirtioFolder>\<VirtioArchFolder>. It returns
// nil when no VirtioFolder is set.
func (s Settings) DriverPaths() []string {
	s = s.WithDefaults()
	if s.VirtioFolder == "" {
		return nil
	}
	var out []string
	for _, d := range s.VirtioDrives {
		for _, drv := range s.VirtioDrivers {
			out = append(out, d+`:\`+drv+`\`+s.VirtioFolder+`\`+s.VirtioArchFolder)
		}
	}
	return out
}
