package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
)

// InstallResult is the document of `install`.
type InstallResult struct {
	Header
	// Package is the .cab or .msu as given.
	Package string `json:"package"`
	// Kind is "cab" or "msu".
	Kind string `json:"kind"`
	// Result is the outcome; for an .msu, of all its packages together
	// (see installCabs). "ok" is Result.OK().
	Result Outcome `json:"result"`
	// ExitCode is the exit code behind Result (of the DISM run that decided
	// it, or of expand.exe when expanding failed); 0 when no program ran
	// (see "error").
	ExitCode uint32 `json:"exit_code"`
	// ExitCodeHex is ExitCode as "0x800F081E".
	ExitCodeHex string `json:"exit_code_hex"`
	// RebootRequired is Result.RebootRequired().
	RebootRequired bool `json:"reboot_required"`
	// Log is DISM's log file (/LogPath). Every DISM run of this install
	// writes to it; stream it with `tail`.
	Log string `json:"log"`
	// ExpandDir is where the .msu was expanded (removed afterwards).
	ExpandDir string `json:"expand_dir,omitempty"`
	// Steps are the programs run, in order; never null.
	Steps []InstallStep `json:"steps"`
	// PendingReboot is the pending-reboot check after the install; nil when
	// it failed (see PendingRebootError) or nothing was run.
	PendingReboot *PendingReboot `json:"pending_reboot,omitempty"`
	// PendingRebootError is why the pending-reboot check failed.
	PendingRebootError string `json:"pending_reboot_error,omitempty"`
	// FromJournal is true when the result is the one --journal recorded for
	// an install that completed earlier (whose answer the plugin may have
	// lost with its connection): nothing was run this time.
	FromJournal bool `json:"from_journal,omitempty"`
	// InProgress is true when --journal shows an install of the package
	// still running since this boot; nothing was run ("ok" is false).
	InProgress bool `json:"in_progress,omitempty"`
}

// InstallStep is one program run by `install`.
type InstallStep struct {
	// Program is the program's full path; Args its arguments.
	Program string   `json:"program"`
	Args    []string `json:"args"`
	// Package is the .cab a DISM step added.
	Package string `json:"package,omitempty"`
	// ExitCode of the program, and as hex.
	ExitCode    uint32 `json:"exit_code"`
	ExitCodeHex string `json:"exit_code_hex"`
	// Result is ClassifyExitCode(ExitCode) for a DISM step.
	Result Outcome `json:"result,omitempty"`
	// Output is the end (at most outputLimit bytes) of the program's
	// standard output and error; DISM /Quiet prints only errors.
	Output string `json:"output,omitempty"`
	// Error is set when the program could not be run at all.
	Error string `json:"error,omitempty"`
}

const outputLimit = 4096

func runInstall(ctx context.Context, e *env, args []string, flags map[string]string) (document, *usageError) {
	if flags["journal"] != "" || flags["stale-after"] != "" {
		return runJournaledInstall(ctx, e, args, flags)
	}
	return installPackage(ctx, e, args, flags)
}

func installPackage(ctx context.Context, e *env, args []string, flags map[string]string) (*InstallResult, *usageError) {
	pkg := args[0]
	ext := winExt(pkg)
	if ext != ".cab" && ext != ".msu" {
		return nil, usagef("package %q is neither a .cab nor an .msu file", pkg)
	}
	for _, f := range []string{"log", "temp"} {
		if v, ok := flags[f]; ok && strings.TrimSpace(v) == "" {
			return nil, &usageError{msg: fmt.Sprintf("flag --%s needs a non-empty value", f), flags: true}
		}
	}
	res := &InstallResult{Package: pkg, Kind: ext[1:], Result: Failed, Steps: []InstallStep{}}
	defer func() {
		res.ExitCodeHex = HexCode(res.ExitCode)
		res.RebootRequired = res.Result.RebootRequired()
		res.OK = res.Result.OK() && res.Error == ""
	}()

	files := e.sys.Files()
	root := systemRoot(e.sys.Registry(), &res.Header)
	res.Log = flags["log"]
	if res.Log == "" {
		res.Log = winJoin(root, "Logs", "winbake", winBase(pkg)+".dism.log")
	}
	fi, err := files.Stat(pkg)
	if err != nil {
		res.Error = fmt.Sprintf("package %s: %v", pkg, err)
		return res, nil
	}
	if fi.IsDir() {
		res.Error = fmt.Sprintf("package %s is a directory", pkg)
		return res, nil
	}
	if d := winDir(res.Log); d != "" {
		if err := files.MkdirAll(d); err != nil {
			res.Error = fmt.Sprintf("creating the log directory %s: %v", d, err)
			return res, nil
		}
	}

	i := &installer{e: e, res: res, root: root}
	if ext == ".cab" {
		i.installCabs(ctx, []string{pkg})
	} else {
		tempBase := flags["temp"]
		if tempBase == "" {
			tempBase = winJoin(root, "Temp", "winbake-agent")
		}
		i.installMsu(ctx, pkg, tempBase)
	}

	if ran := len(res.Steps) > 0; ran {
		pr, err := checkServicing(e.sys)
		if err != nil {
			res.PendingRebootError = err.Error()
		} else {
			res.PendingReboot = &pr
		}
	}
	e.progress("%s: %s (exit code %d, %s)", pkg, res.Result, res.ExitCode, HexCode(res.ExitCode))
	return res, nil
}

type installer struct {
	e    *env
	res  *InstallResult
	root string
}

func (i *installer) program(name string) string { return winJoin(i.root, "System32", name) }

// run runs a program as one step, copying its output to the agent's stderr.
func (i *installer) run(ctx context.Context, step InstallStep) InstallStep {
	out := &lockedWriter{w: i.e.stderr, tail: &tailBuffer{limit: outputLimit}}
	code, err := i.e.sys.Processes().Run(ctx, step.Program, step.Args, out, out)
	if b := out.tail.bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
		_, _ = io.WriteString(i.e.stderr, "\n") // keep the next progress line on a line of its own
	}
	step.ExitCode = code
	step.ExitCodeHex = HexCode(code)
	step.Output = strings.TrimSpace(strings.ToValidUTF8(string(out.tail.bytes()), "\uFFFD"))
	if err != nil {
		step.Error = err.Error()
	}
	return step
}

// installCabs adds the cabs with DISM one at a time, in order, all logging
// to res.Log. It stops at the first cab that fails, needs a servicing stack
// or starts a reboot, or when ctx ends. The result of the whole is the
// highest-ranking outcome (failed > needs_servicing_stack >
// reboot_initiated > installed_reboot_required > installed), with its exit
// code; when every cab was skipped (already installed or not applicable),
// the outcome of the last cab, which is the update's main package (see
// msuInstallOrder).
func (i *installer) installCabs(ctx context.Context, cabs []string) {
	res := i.res
	var decisive *InstallStep
	for n, cab := range cabs {
		i.e.progress("adding %s (%d of %d) with DISM, log %s", cab, n+1, len(cabs), res.Log)
		step := i.run(ctx, InstallStep{
			Program: i.program("dism.exe"),
			Args: []string{
				"/Online", "/Add-Package", "/PackagePath:" + cab,
				"/NoRestart", "/Quiet", "/English", "/LogPath:" + res.Log,
			},
			Package: cab,
		})
		if step.Error != "" {
			step.Result = Failed
		} else {
			step.Result = ClassifyExitCode(step.ExitCode)
		}
		i.e.progress("DISM exit code %d (%s): %s", step.ExitCode, step.ExitCodeHex, step.Result)
		res.Steps = append(res.Steps, step)
		last := &res.Steps[len(res.Steps)-1]
		if decisive == nil || last.Result.rank() > decisive.Result.rank() || decisive.Result.rank() == 0 && last.Result.rank() == 0 {
			decisive = last
		}
		switch {
		case step.Error != "":
			res.Error = fmt.Sprintf("running DISM for %s: %s", cab, step.Error)
		case ctx.Err() != nil:
			res.Error = fmt.Sprintf("cancelled while DISM added %s: %v", cab, ctx.Err())
		case step.Result == Failed:
			res.Error = fmt.Sprintf("DISM failed to add %s: exit code %d (%s); see %s", cab, step.ExitCode, step.ExitCodeHex, res.Log)
		case step.Result == NeedsServicingStack:
			res.Error = fmt.Sprintf("%s needs a newer servicing stack (exit code %d, %s): install the servicing stack update first, then retry", cab, step.ExitCode, step.ExitCodeHex)
		case step.Result == RebootInitiated && n < len(cabs)-1:
			res.warn("DISM started a reboot after %s; %d package(s) of %s not added yet", cab, len(cabs)-1-n, res.Package)
		}
		if res.Error != "" || step.Result == RebootInitiated {
			break
		}
	}
	switch {
	case res.Error != "":
		// The last step stopped the install: it decides.
		last := res.Steps[len(res.Steps)-1]
		res.Result, res.ExitCode = Failed, last.ExitCode
		if last.Result == NeedsServicingStack && ctx.Err() == nil {
			res.Result = NeedsServicingStack
		}
	case decisive != nil:
		res.Result, res.ExitCode = decisive.Result, decisive.ExitCode
	}
}

// lockedWriter copies a program's output to the agent's stderr and keeps its
// end; programs may write stdout and stderr concurrently.
type lockedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	tail *tailBuffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.tail.Write(p)
	_, _ = l.w.Write(p) // progress only: a broken stderr must not fail the install
	return len(p), nil
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	limit int
	buf   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte { return t.buf }

// removeAll removes a file or a directory tree through Files; a missing path
// is not an error.
func removeAll(files Files, p string) error {
	fi, err := files.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := files.ReadDir(p)
		if err != nil {
			return err
		}
		for _, ent := range entries {
			if err := removeAll(files, winJoin(p, ent.Name())); err != nil {
				return err
			}
		}
	}
	return files.Remove(p)
}
