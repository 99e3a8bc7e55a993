package updates

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/agent"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
)

func (r *installRun) manifest() guestcontract.UpdatesRecord {
	m := guestcontract.UpdatesRecord{Version: 1, Finished: time.Now().UTC(), Reboots: r.reboots, RebootsObserved: r.observed, DeferredToFirstBoot: len(r.failed()) > 0 && r.cfg.DeferFailed, Packages: []guestcontract.UpdatesRecordPackage{}}
	for _, s := range r.states {
		// A checkpoint that went in with its target has the target's
		// outcome: it was added in the target's DISM call.
		src, message := s, s.message
		if t := s.withTarget; t != nil {
			src, message = t, "added with "+t.pkg.Name+" (DISM takes checkpoints from the target's folder)"
		}
		res := src.result
		if res == "" {
			res = resultPending
		}
		attempts := src.attempts
		if src.result != resultFailed && src.result != resultDeferred && src.result != "" {
			attempts++
		}
		m.Packages = append(m.Packages, guestcontract.UpdatesRecordPackage{
			File: s.pkg.Name, KB: s.pkg.KB, Identity: s.pkg.Identity, Kind: s.pkg.Kind, SHA256: s.pkg.SHA256, Bytes: s.pkg.Size,
			Result: res, Outcome: src.outcome, ExitCode: src.exitCode, ExitCodeHex: agent.HexCode(src.exitCode),
			Attempts: attempts, Reboots: src.rebootsAfter, Message: message,
		})
	}
	return m
}

func (r *installRun) writeManifest(ctx context.Context) error {
	b, err := json.MarshalIndent(r.manifest(), "", "  ")
	if err != nil {
		return err
	}
	if err := guestcmd.Upload(ctx, r.g.comm, guestcontract.UpdatesRecordPath, bytes.NewReader(append(b, '\r', '\n')), nil, uploadTimeout, uploadLimit); err != nil {
		return fmt.Errorf("writing the manifest %s: %w", guestcontract.UpdatesRecordPath, err)
	}
	return nil
}

// summary prints the table of packages.
func (r *installRun) summary() {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tKB\tKIND\tRESULT\tEXIT CODE\tATTEMPTS\tREBOOTS")
	for _, p := range r.manifest().Packages {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", p.File, dash(p.KB), p.Kind, p.Result, p.ExitCodeHex, p.Attempts, p.Reboots)
	}
	tw.Flush()
	r.ui.Say(fmt.Sprintf("winbake-updates summary (%d reboot(s) started, %d seen; manifest %s):\n%s", r.reboots, r.observed, guestcontract.UpdatesRecordPath, strings.TrimRight(b.String(), "\n")))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// uploadFile copies a package through the communicator (delivery = "winrm").
func uploadFile(ctx context.Context, comm packersdk.Communicator, dest string, pk *Package, timeout time.Duration) error {
	f, err := os.Open(pk.LocalPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := guestcmd.Upload(ctx, comm, dest, f, &st, timeout, "install_timeout"); err != nil {
		return fmt.Errorf("uploading %s to %s over WinRM: %w", pk.Name, dest, err)
	}
	return nil
}
