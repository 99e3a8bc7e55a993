package common

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

// guestScripts are the PowerShell scripts the builder runs in the guest at
// the end of the build.
//
//go:embed guest
var guestScripts embed.FS

var guestTemplates = template.Must(template.New("").Funcs(template.FuncMap{"ps": psQuote}).ParseFS(guestScripts, "guest/*.ps1"))

// psQuote makes s a single-quoted PowerShell string literal.
func psQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// guestOutput is what a guest script printed and how it exited.
type guestOutput struct {
	Stdout, Stderr string
	ExitStatus     int
}

// runGuestScript renders the embedded script name with data and runs it
// under Windows PowerShell with -EncodedCommand (UTF-16LE, base64), which
// keeps quoting out of cmd.exe's way.
func runGuestScript(ctx context.Context, comm packersdk.Communicator, name string, data any) (guestOutput, error) {
	var script bytes.Buffer
	script.WriteString("$ProgressPreference = 'SilentlyContinue';\n")
	if err := guestTemplates.ExecuteTemplate(&script, name, data); err != nil {
		return guestOutput{}, fmt.Errorf("rendering %s: %w", name, err)
	}
	u := utf16.Encode([]rune(script.String()))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	var stdout, stderr bytes.Buffer
	cmd := &packersdk.RemoteCmd{
		Command: "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + base64.StdEncoding.EncodeToString(b),
		Stdout:  &stdout, Stderr: &stderr,
	}
	if err := comm.Start(ctx, cmd); err != nil {
		return guestOutput{}, fmt.Errorf("running %s in the guest: %w", name, err)
	}
	status := cmd.Wait()
	return guestOutput{Stdout: stdout.String(), Stderr: stderr.String(), ExitStatus: status}, nil
}

var clixmlError = regexp.MustCompile(`<S S="Error">(.*?)</S>`)

// errorText turns PowerShell's CLIXML error stream into plain text.
func (o guestOutput) errorText() string {
	s := strings.TrimSpace(o.Stderr)
	if !strings.HasPrefix(s, "#< CLIXML") {
		return s
	}
	var lines []string
	for _, m := range clixmlError.FindAllStringSubmatch(s, -1) {
		line := strings.TrimSpace(strings.ReplaceAll(html.UnescapeString(m[1]), "_x000D__x000A_", "\n"))
		if line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, " ")
}
