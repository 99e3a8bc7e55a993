package updates

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/agent"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
)

// Guest paths of the first-boot retry (defer_failed).
const (
	pendingListPath    = `C:\ProgramData\winbake\pending-updates.txt`
	retryCmdPath       = `C:\ProgramData\winbake\retry-updates.cmd`
	setupCompletePath  = `C:\Windows\Setup\Scripts\SetupComplete.cmd`
	cloudbaseInitDir   = `C:\Program Files\Cloudbase Solutions\Cloudbase-Init`
	cloudbaseSetSetup  = cloudbaseInitDir + `\bin\SetSetupComplete.cmd`
	cloudbaseLocalPath = cloudbaseInitDir + `\LocalScripts\winbake-retry-updates.ps1`
	setupCompleteCall  = `call ` + retryCmdPath
)

var (
	//go:embed scripts/retry-updates.cmd
	retryCmd []byte
	//go:embed scripts/retry-updates.ps1
	retryPS1 []byte
)

// deferFailed keeps the failed packages in the image with a first-boot
// retry: the list and the retry script, a call appended to SetupComplete.cmd,
// and, when cloudbase-init is installed, a LocalScript and the same call
// appended to cloudbase-init's SetSetupComplete.cmd, which rewrites
// SetupComplete.cmd at deploy time.
func (r *installRun) deferFailed(ctx context.Context, failed []*pkgState) error {
	var list strings.Builder
	for _, s := range failed {
		s.result = resultDeferred
		list.WriteString(s.guestPath + "\r\n")
	}
	comm := r.g.comm
	for _, f := range []struct {
		path string
		data []byte
	}{
		{pendingListPath, []byte(list.String())},
		{retryCmdPath, crlf(retryCmd)},
	} {
		if err := guestcmd.Upload(ctx, comm, f.path, bytes.NewReader(f.data), nil, uploadTimeout, uploadLimit); err != nil {
			return fmt.Errorf("defer_failed: writing %s: %w", f.path, err)
		}
	}
	if _, err := r.appendLine(ctx, setupCompletePath, setupCompleteCall, ""); err != nil {
		return fmt.Errorf("defer_failed: %w", err)
	}
	where := setupCompletePath
	// cloudbase-init's SetSetupComplete.cmd overwrites SetupComplete.cmd
	// (with ">") at deploy time: have it write our call back after its own.
	line := "echo " + setupCompleteCall + ` >> "%windir%\Setup\Scripts\SetupComplete.cmd"`
	res, err := r.appendLine(ctx, cloudbaseSetSetup, line, cloudbaseSetSetup)
	if err != nil {
		return fmt.Errorf("defer_failed: %w", err)
	}
	if !res.Skipped {
		if err := guestcmd.Upload(ctx, comm, cloudbaseLocalPath, bytes.NewReader(crlf(retryPS1)), nil, uploadTimeout, uploadLimit); err != nil {
			return fmt.Errorf("defer_failed: writing %s: %w", cloudbaseLocalPath, err)
		}
		where += ", cloudbase-init's SetSetupComplete.cmd and LocalScripts"
	}
	r.ui.Say(fmt.Sprintf("defer_failed: %d package(s) stay in the image and are retried at first boot (%s): %s", len(failed), where, names(failed)))
	return nil
}

// appendLine adds line to a guest text file unless it has it (agent
// append-line); with ifExists, only when that path exists.
func (r *installRun) appendLine(ctx context.Context, path, line, ifExists string) (agent.AppendLineResult, error) {
	var res agent.AppendLineResult
	args := []string{"append-line", path, base64.StdEncoding.EncodeToString([]byte(line))}
	if ifExists != "" {
		args = append(args, "--if-exists", ifExists)
	}
	if strings.Contains(path, " ") {
		args[1] = `"` + path + `"`
	}
	if strings.Contains(ifExists, " ") {
		args[4] = `"` + ifExists + `"`
	}
	if err := r.g.run(ctx, &res, args...); err != nil {
		return res, err
	}
	if !res.OK {
		return res, fmt.Errorf("adding a line to %s: %s", path, res.Error)
	}
	return res, nil
}

// crlf gives an embedded script Windows line endings.
func crlf(b []byte) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n"))
}

// removeDelivered takes the delivered packages and the install journals out
// of the image; packages kept for the first-boot retry stay.
func (r *installRun) removeDelivered(ctx context.Context) error {
	paths := []string{r.cfg.GuestDirectory + `\journal`}
	keepCumulative := false
	for _, s := range r.states {
		if s.result != resultDeferred {
			paths = append(paths, s.guestPath)
		} else if strings.HasPrefix(s.guestPath, r.cfg.GuestDirectory+`\cumulative\`) {
			keepCumulative = true
		}
	}
	if !keepCumulative {
		paths = append(paths, r.cfg.GuestDirectory+`\cumulative`)
	}
	for _, p := range paths {
		var res agent.RemoveResult
		if err := r.g.run(ctx, &res, "remove", p); err != nil {
			return err
		}
		if !res.OK {
			return fmt.Errorf("removing %s from the image: %s", p, res.Error)
		}
	}
	return nil
}
