package common

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

// guestScripts are the PowerShell scripts the builder runs in the guest at
// the end of the build.
//
//go:embed guest
var guestScripts embed.FS

var guestTemplates = template.Must(template.New("").Funcs(template.FuncMap{"ps": qemuvm.PSQuote}).ParseFS(guestScripts, "guest/*.ps1"))

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
	r, err := guestcmd.Run(ctx, comm, guestcmd.Command{
		Line: qemuvm.PowerShellCommand(script.String()), What: "running " + name + " in the guest",
		Timeout: guestQueryTimeout, Limit: guestQueryLimit,
	})
	if err != nil {
		return guestOutput{}, err
	}
	return guestOutput{Stdout: r.Stdout, Stderr: r.Stderr, ExitStatus: r.ExitStatus}, nil
}

// guestQueryTimeout bounds a script that only reads the guest's state:
// PowerShell's start is the slow part, up to a minute on a loaded guest
// under TCG.
const (
	guestQueryTimeout = 5 * time.Minute
	guestQueryLimit   = "a query of the guest's state; it answers within seconds"
)

// errorText is the script's error output as one line.
func (o guestOutput) errorText() string {
	lines := qemuvm.PowerShellErrorLines(o.Stderr)
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}
