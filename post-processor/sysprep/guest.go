package sysprep

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"fmt"
	"html"
	"regexp"
	"strings"
	"text/template"
	"unicode/utf16"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// guestFiles are the PowerShell scripts, the answer file and the
// cloudbase-init configuration template run or written in the guest.
//
//go:embed guest
var guestFiles embed.FS

var guestTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"ps":   psQuote,
	"join": strings.Join,
}).ParseFS(guestFiles, "guest/*"))

// psQuote makes s a single-quoted PowerShell string literal.
func psQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// renderGuestFile renders one embedded guest file with data.
func renderGuestFile(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := guestTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.String(), nil
}

// powershellCommand is the command line that runs script under Windows
// PowerShell: -EncodedCommand (UTF-16LE, base64) keeps quoting out of
// cmd.exe's way; progress records are silenced so that they do not reach
// stderr as CLIXML.
func powershellCommand(script string) string {
	script = "$ProgressPreference = 'SilentlyContinue';\n" + script
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + base64.StdEncoding.EncodeToString(b)
}

// guestResult is what a guest command printed and how it exited.
type guestResult struct {
	Stdout, Stderr string
	ExitStatus     int
}

// errorText turns PowerShell's CLIXML error stream into plain lines.
func (r guestResult) errorText() string {
	s := strings.TrimSpace(r.Stderr)
	if !strings.HasPrefix(s, "#< CLIXML") {
		return s
	}
	var lines []string
	for _, m := range clixmlString.FindAllStringSubmatch(s, -1) {
		line := html.UnescapeString(m[1])
		line = strings.ReplaceAll(line, "_x000D__x000A_", "\n")
		line = strings.TrimRight(line, "\n")
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

var clixmlString = regexp.MustCompile(`<S S="Error">(.*?)</S>`)

// runGuest runs command in the guest and collects its output.
func runGuest(ctx context.Context, comm packersdk.Communicator, command string) (guestResult, error) {
	var stdout, stderr bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: command, Stdout: &stdout, Stderr: &stderr}
	if err := comm.Start(ctx, cmd); err != nil {
		return guestResult{}, err
	}
	status := cmd.Wait()
	return guestResult{Stdout: stdout.String(), Stderr: stderr.String(), ExitStatus: status}, nil
}

// runScript renders the embedded script name with data and runs it under
// PowerShell. A non-zero exit is an error that carries the script's error
// output.
func runScript(ctx context.Context, comm packersdk.Communicator, name string, data any) (guestResult, error) {
	script, err := renderGuestFile(name, data)
	if err != nil {
		return guestResult{}, err
	}
	r, err := runGuest(ctx, comm, powershellCommand(script))
	if err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	if r.ExitStatus != 0 {
		return r, fmt.Errorf("%s exited with %d: %s", name, r.ExitStatus, r.errorText())
	}
	return r, nil
}

// lines splits output into its non-empty lines.
func lines(out string) []string {
	var l []string
	for _, s := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}
