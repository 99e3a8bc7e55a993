package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// The install journal makes `install` safe to repeat when the plugin lost
// its answer (a WinRM connection dropped mid-install): the agent records
// the start and the result of an install in a small file, and a repeated
// `install --journal` with the same file returns the recorded result
// instead of running DISM again, or reports that the first run is still
// going. A run cut off by a reboot is run again: its record carries the
// boot time it started in.

// journalEntry is the content of a --journal file.
type journalEntry struct {
	Package  string         `json:"package"`
	State    string         `json:"state"` // "running" or "done"
	BootTime time.Time      `json:"boot_time"`
	Started  time.Time      `json:"started"`
	Result   *InstallResult `json:"result,omitempty"`
}

// DefaultStaleAfter is how long a "running" record of the current boot is
// believed (--stale-after): after that the install is run again.
const DefaultStaleAfter = 2 * time.Hour

func runJournaledInstall(ctx context.Context, e *env, args []string, flags map[string]string) (document, *usageError) {
	journal := flags["journal"]
	if strings.TrimSpace(journal) == "" {
		return nil, &usageError{msg: "--stale-after needs --journal <file>", flags: true}
	}
	stale := DefaultStaleAfter
	if s, ok := flags["stale-after"]; ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, &usageError{msg: fmt.Sprintf("--stale-after %q: want a positive duration such as 30m", s), flags: true}
		}
		stale = d
	}
	pkg := args[0]
	files := e.sys.Files()
	boot, err := e.sys.Power().BootTime()
	if err != nil {
		res := &InstallResult{Package: pkg, Kind: strings.TrimPrefix(winExt(pkg), "."), Result: Failed, Steps: []InstallStep{}}
		res.fail("reading the boot time for the journal (not installing): %v", err)
		return res, nil
	}
	now := time.Now().UTC()
	if b, err := readFile(files, journal); err == nil {
		var j journalEntry
		if err := json.Unmarshal(b, &j); err != nil {
			e.progress("ignoring the unreadable journal %s: %v", journal, err)
		} else if strings.EqualFold(j.Package, pkg) {
			switch {
			case j.State == "done" && j.Result != nil:
				r := j.Result
				r.FromJournal = true
				r.Warnings = nil
				e.progress("%s was installed before (%s, recorded in %s); not running it again", pkg, r.Result, journal)
				return r, nil
			case j.State == "running" && j.BootTime.Equal(boot.UTC()) && now.Sub(j.Started) < stale:
				res := &InstallResult{Package: pkg, Kind: strings.TrimPrefix(winExt(pkg), "."), Result: Failed, Steps: []InstallStep{}, InProgress: true}
				res.fail("an install of %s started at %s in this boot is still running (journal %s); ask again later", pkg, j.Started.Format(time.RFC3339), journal)
				return res, nil
			default:
				e.progress("the install recorded in %s did not finish (started %s); running it again", journal, j.Started.Format(time.RFC3339))
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		e.progress("ignoring the journal %s: %v", journal, err)
	}
	if err := writeJournal(files, journal, journalEntry{Package: pkg, State: "running", BootTime: boot.UTC(), Started: now}); err != nil {
		res := &InstallResult{Package: pkg, Kind: strings.TrimPrefix(winExt(pkg), "."), Result: Failed, Steps: []InstallStep{}}
		res.fail("writing the journal %s (not installing): %v", journal, err)
		return res, nil
	}
	res, uerr := installPackage(ctx, e, args, flags)
	if uerr != nil {
		_ = files.Remove(journal) // the install never started; the error that matters is uerr
		return nil, uerr
	}
	if ctx.Err() == nil && len(res.Steps) > 0 {
		final := *res
		final.OK = res.Result.OK() && res.Error == ""
		final.RebootRequired = res.Result.RebootRequired()
		final.ExitCodeHex = HexCode(res.ExitCode)
		if err := writeJournal(files, journal, journalEntry{Package: pkg, State: "done", BootTime: boot.UTC(), Started: now, Result: &final}); err != nil {
			res.warn("writing the journal %s: %v", journal, err)
		}
	} else if err := files.Remove(journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		res.warn("removing the journal %s: %v", journal, err)
	}
	return res, nil
}

func writeJournal(files Files, p string, j journalEntry) error {
	if d := winDir(p); d != "" {
		if err := files.MkdirAll(d); err != nil {
			return err
		}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	w, err := files.Create(p)
	if err != nil {
		return err
	}
	_, err = bytes.NewReader(b).WriteTo(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}
