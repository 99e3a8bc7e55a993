package common

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"strings"
	"text/template"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// guestScripts are the PowerShell scripts the builder runs in the guest at
// the end of the build.
//
//go:embed guest
var guestScripts embed.FS

var guestTemplates = template.Must(template.New("").Funcs(template.FuncMap{"ps": PSQuote}).ParseFS(guestScripts, "guest/*.ps1"))

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
	if err := guestTemplates.ExecuteTemplate(&script, name, data); err != nil {
		return guestOutput{}, fmt.Errorf("rendering %s: %w", name, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := &packersdk.RemoteCmd{
		Command: PowerShellCommand(script.String()),
		Stdout:  &stdout, Stderr: &stderr,
	}
	if err := comm.Start(ctx, cmd); err != nil {
		return guestOutput{}, fmt.Errorf("running %s in the guest: %w", name, err)
	}
	status := cmd.Wait()
	return guestOutput{Stdout: stdout.String(), Stderr: stderr.String(), ExitStatus: status}, nil
}

// errorText is the script's error output as one line.
func (o guestOutput) errorText() string {
	lines := PowerShellErrorLines(o.Stderr)
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}
