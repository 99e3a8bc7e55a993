package sysprep

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"strings"
	"text/template"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
)

// guestFiles are the PowerShell scripts, the answer file and the
// cloudbase-init configuration template run or written in the guest.
//
//go:embed guest
var guestFiles embed.FS

var guestTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"ps":   wbcommon.PSQuote,
	"join": strings.Join,
}).ParseFS(guestFiles, "guest/*"))

// renderGuestFile renders one embedded guest file with data.
func renderGuestFile(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := guestTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.String(), nil
}

// powershellCommand is the command line that runs script under Windows
// PowerShell.
func powershellCommand(script string) string { return wbcommon.PowerShellCommand(script) }

// guestResult is what a guest command printed and how it exited.
type guestResult struct {
	Stdout, Stderr string
	ExitStatus     int
}

// errorText is PowerShell's error output as plain lines.
func (r guestResult) errorText() string {
	return strings.Join(wbcommon.PowerShellErrorLines(r.Stderr), "\n")
}

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
