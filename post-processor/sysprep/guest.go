package sysprep

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// guestFiles are the PowerShell scripts, the answer file and the
// cloudbase-init configuration template run or written in the guest.
//
//go:embed guest
var guestFiles embed.FS

var guestTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"ps":   qemuvm.PSQuote,
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
func powershellCommand(script string) string { return qemuvm.PowerShellCommand(script) }

// guestResult is what a guest command printed and how it exited.
type guestResult struct {
	Stdout, Stderr string
	ExitStatus     int
}

// errorText is PowerShell's error output as plain lines.
func (r guestResult) errorText() string {
	return strings.Join(qemuvm.PowerShellErrorLines(r.Stderr), "\n")
}

// guestCommandTimeout bounds each command that prepares the guest for
// sysprep: an MSI install or a ReTrim of a large disk takes minutes, none
// takes half an hour.
const (
	guestCommandTimeout = 30 * time.Minute
	guestCommandLimit   = "the bound of each preparation command"
)

// uploadTimeout bounds one upload over WinRM: Packer's winrmcp moves a few
// hundred KiB/s at best (hashicorp/packer#7998: 60 MB in 18 minutes), the
// cloudbase-init MSI being the largest file.
const (
	uploadTimeout = time.Hour
	uploadLimit   = "the bound of an upload over WinRM"
)

// runGuest runs command in the guest and collects its output, within
// guestCommandTimeout.
func runGuest(ctx context.Context, comm packersdk.Communicator, command string) (guestResult, error) {
	return runGuestWithin(ctx, comm, command, guestCommandTimeout, guestCommandLimit)
}

// runGuestWithin runs command in the guest within timeout (limit names
// where the bound comes from).
func runGuestWithin(ctx context.Context, comm packersdk.Communicator, command string, timeout time.Duration, limit string) (guestResult, error) {
	what := command
	if len(what) > 60 {
		what = what[:60] + "…"
	}
	r, err := guestcmd.Run(ctx, comm, guestcmd.Command{Line: command, What: what, Timeout: timeout, Limit: limit})
	return guestResult{Stdout: r.Stdout, Stderr: r.Stderr, ExitStatus: r.ExitStatus}, err
}

// runScript renders the embedded script name with data and runs it under
// PowerShell. A non-zero exit is an error that carries the script's error
// output.
func runScript(ctx context.Context, comm packersdk.Communicator, name string, data any) (guestResult, error) {
	script, err := renderGuestFile(name, data)
	if err != nil {
		return guestResult{}, err
	}
	r, err := guestcmd.Run(ctx, comm, guestcmd.Command{Line: powershellCommand(script), What: name, Timeout: guestCommandTimeout, Limit: guestCommandLimit})
	res := guestResult{Stdout: r.Stdout, Stderr: r.Stderr, ExitStatus: r.ExitStatus}
	if err == nil && res.ExitStatus != 0 {
		err = fmt.Errorf("%s exited with %d: %s", name, res.ExitStatus, res.errorText())
	}
	return res, err
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
