package qemuvm

import (
	"encoding/base64"
	"html"
	"regexp"
	"strings"
	"unicode/utf16"
)

// PSQuote makes s a single-quoted PowerShell string literal.
func PSQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// PowerShellCommand is the command line that runs script under Windows
// PowerShell: -EncodedCommand (UTF-16LE, base64) keeps quoting out of
// cmd.exe's way; progress records are silenced so that they do not reach
// stderr as CLIXML.
func PowerShellCommand(script string) string {
	u := utf16.Encode([]rune("$ProgressPreference = 'SilentlyContinue';\n" + script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + base64.StdEncoding.EncodeToString(b)
}

var clixmlError = regexp.MustCompile(`<S S="Error">(.*?)</S>`)

// PowerShellErrorLines turns PowerShell's error stream into its non-blank
// lines: CLIXML (what PowerShell writes to a redirected stderr) is
// decoded, anything else is returned as one line.
func PowerShellErrorLines(stderr string) []string {
	s := strings.TrimSpace(stderr)
	if !strings.HasPrefix(s, "#< CLIXML") {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	var lines []string
	for _, m := range clixmlError.FindAllStringSubmatch(s, -1) {
		line := strings.TrimRight(strings.ReplaceAll(html.UnescapeString(m[1]), "_x000D__x000A_", "\n"), "\n")
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return lines
}
