package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Exit codes of Main (and of winbake-agent.exe). They summarise the one JSON
// document Main writes; the document is the result, the exit code only a
// cross-check, because the path from the guest to the plugin (cmd.exe,
// PowerShell wrappers, WinRM) has been known to lose or rewrite exit codes.
// The exit code of a program the agent ran (DISM, expand) is never passed
// through: it is in the JSON.
const (
	// ExitOK: the verb did its job; the document has "ok": true.
	ExitOK uint32 = 0
	// ExitFailed: the verb ran and failed (a program failed, the registry
	// or a file could not be read, ...); "ok": false and "error" says why.
	ExitFailed uint32 = 1
	// ExitUsage: the command line was wrong (no or unknown verb, unknown or
	// malformed flag, wrong number of arguments); the document is a
	// UsageResult. Nothing was changed on the machine.
	ExitUsage uint32 = 2
	// ExitUnsupported: the agent cannot run on this operating system (the
	// non-Windows build of winbake-agent); see Unsupported.
	ExitUnsupported uint32 = 3
	// ExitInternal: a bug in the agent (a panic) or its standard output
	// could not be written; the document, if any, has "ok": false.
	ExitInternal uint32 = 4
)

// Protocol is the version of the JSON documents. It changes when a field is
// renamed, removed or changes meaning; added fields keep it.
const Protocol = 1

// Header opens every document the agent writes. Its fields appear at the
// top level of the JSON object, next to the verb's own fields.
type Header struct {
	// Verb is the verb that ran (args[0]); "" when none was given.
	Verb string `json:"verb"`
	// OK is true when the verb did its job. For install it is also true for
	// the outcomes that leave nothing to fix (see Outcome.OK).
	OK bool `json:"ok"`
	// Error explains a failure; empty when OK.
	Error string `json:"error,omitempty"`
	// Protocol is the constant Protocol.
	Protocol int `json:"protocol"`
	// Warnings are problems that did not stop the verb (a temporary
	// directory left behind, an unreadable registry value, ...).
	Warnings []string `json:"warnings,omitempty"`
}

func (h *Header) header() *Header { return h }

func (h *Header) fail(format string, args ...any) {
	h.OK = false
	h.Error = fmt.Sprintf(format, args...)
}

func (h *Header) warn(format string, args ...any) {
	h.Warnings = append(h.Warnings, fmt.Sprintf(format, args...))
}

// document is any result struct; they all embed Header.
type document interface{ header() *Header }

// UsageResult is the document of a usage error (exit code ExitUsage).
type UsageResult struct {
	Header
	// UsageError is always true, so the document says what it is without
	// the exit code.
	UsageError bool `json:"usage_error"`
	// Usage is the synopsis of the verb, or of the agent when the verb is
	// unknown.
	Usage string `json:"usage"`
	// AcceptedVerbs lists the verbs when the verb was missing or unknown.
	AcceptedVerbs []string `json:"accepted_verbs,omitempty"`
	// AcceptedFlags lists the flags of the verb (with their "--") when a
	// flag was unknown or malformed; absent for a verb without flags.
	AcceptedFlags []string `json:"accepted_flags,omitempty"`
}

// env is what a verb runs with.
type env struct {
	sys    System
	stdin  io.Reader
	stderr io.Writer
	verb   string
}

// progress writes one human-readable line to standard error.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.stderr, "winbake-agent: %s: %s\n", e.verb, fmt.Sprintf(format, args...))
}

// verbSpec describes a verb: its synopsis, flags, number of positional
// arguments and implementation.
type verbSpec struct {
	name    string
	usage   string
	flags   []string // without "--"; every flag takes a value
	minArgs int
	maxArgs int
	run     func(ctx context.Context, e *env, args []string, flags map[string]string) (document, *usageError)
}

var verbs []verbSpec

func init() {
	verbs = []verbSpec{
		{name: "version", usage: "winbake-agent version", run: runVersion},
		{name: "boot-time", usage: "winbake-agent boot-time", run: runBootTime},
		{name: "pending-reboot", usage: "winbake-agent pending-reboot", run: runPendingReboot},
		{
			name: "install", usage: `winbake-agent install <C:\path\package.cab|.msu> [--log <file>] [--temp <dir>] [--journal <file> [--stale-after <duration>]]`,
			flags: []string{"log", "temp", "journal", "stale-after"}, minArgs: 1, maxArgs: 1, run: runInstall,
		},
		{
			name: "fetch", usage: `winbake-agent fetch <http://host:port/path> <C:\path\file> --sha256 <hex> [--size <bytes>]`,
			flags: []string{"sha256", "size"}, minArgs: 2, maxArgs: 2, run: runFetch,
		},
		{
			name: "append-line", usage: `winbake-agent append-line <C:\path\file> <base64 of the line> [--if-exists <C:\path>]`,
			flags: []string{"if-exists"}, minArgs: 2, maxArgs: 2, run: runAppendLine,
		},
		{
			name: "winrm-client", usage: "winbake-agent winrm-client [--port <5985>]",
			flags: []string{"port"}, run: runWinRMClient,
		},
		{
			name: "remove", usage: `winbake-agent remove <C:\path\file or directory>`,
			minArgs: 1, maxArgs: 1, run: runRemove,
		},
		{
			name: "restart", usage: "winbake-agent restart [--delay <duration, e.g. 0s, 30s>] [--reason <text>]",
			flags: []string{"delay", "reason"}, run: runRestart,
		},
		{
			name: "tail", usage: `winbake-agent tail <C:\path\file> [--from <byte offset>] [--max <bytes>]`,
			flags: []string{"from", "max"}, minArgs: 1, maxArgs: 1, run: runTail,
		},
	}
}

// Verbs lists the verbs Main accepts, in the order of the usage text.
func Verbs() []string {
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	return names
}

func agentUsage() string {
	lines := make([]string, len(verbs))
	for i, v := range verbs {
		lines[i] = v.usage
	}
	return strings.Join(lines, "\n")
}

// usageError is a command-line mistake found before the verb touched the
// machine.
type usageError struct {
	msg          string
	verbs, flags bool // list the accepted verbs / flags in the document
}

func usagef(format string, args ...any) *usageError {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Main runs winbake-agent: args[0] is the verb, the rest its arguments and
// flags. It writes exactly one JSON document and a newline to stdout,
// human-readable progress, warnings and errors to stderr, and returns one of
// the Exit* codes. stdin is reserved for verbs that read input; none does
// yet. ctx bounds the programs the verb runs.
//
// The verbs and their documents (each embeds Header):
//
//	version                              VersionResult
//	boot-time                            BootTimeResult
//	pending-reboot                       PendingRebootResult
//	install <.cab|.msu> [--log] [--temp] [--journal] InstallResult
//	fetch <url> <file> --sha256 [--size] FetchResult
//	append-line <file> <base64> [--if-exists] AppendLineResult
//	winrm-client [--port]                WinRMClientResult
//	remove <path>                        RemoveResult
//	restart [--delay] [--reason]         RestartResult
//	tail <file> [--from] [--max]         TailResult
//	(usage errors)                       UsageResult
//
// Flags are "--name value" or "--name=value" and may come before or after
// the positional argument; "--" ends the flags.
//
// Main never panics: a panic inside a verb becomes a document with "ok":
// false and ExitInternal, so the simulated guest can call Main in-process.
func Main(ctx context.Context, sys System, args []string, stdin io.Reader, stdout, stderr io.Writer) (code uint32) {
	verb := ""
	if len(args) > 0 {
		verb = args[0]
	}
	var doc document
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "winbake-agent: %s: internal error: %v\n%s", verb, r, debug.Stack())
			h := &Header{Verb: verb, Protocol: Protocol}
			h.fail("internal error in winbake-agent: %v", r)
			writeDocument(stdout, stderr, h)
			code = ExitInternal
		}
	}()

	doc, code = dispatch(ctx, sys, args, stdin, stderr)
	h := doc.header()
	h.Verb = verb
	h.Protocol = Protocol
	for _, w := range h.Warnings {
		fmt.Fprintf(stderr, "winbake-agent: warning: %s\n", w)
	}
	if !h.OK {
		fmt.Fprintf(stderr, "winbake-agent: error: %s\n", h.Error)
	}
	if u, ok := doc.(*UsageResult); ok {
		fmt.Fprintf(stderr, "usage:\n  %s\n", strings.ReplaceAll(u.Usage, "\n", "\n  "))
	}
	if !writeDocument(stdout, stderr, doc) {
		return ExitInternal
	}
	return code
}

func dispatch(ctx context.Context, sys System, args []string, stdin io.Reader, stderr io.Writer) (document, uint32) {
	if len(args) == 0 {
		return usageDocument(nil, &usageError{msg: "no verb given", verbs: true}), ExitUsage
	}
	var spec *verbSpec
	for i := range verbs {
		if verbs[i].name == args[0] {
			spec = &verbs[i]
		}
	}
	if spec == nil {
		return usageDocument(nil, &usageError{
			msg:   fmt.Sprintf("unknown verb %q; accepted verbs: %s", args[0], strings.Join(Verbs(), ", ")),
			verbs: true,
		}), ExitUsage
	}
	pos, flags, uerr := parseArgs(spec, args[1:])
	if uerr != nil {
		return usageDocument(spec, uerr), ExitUsage
	}
	e := &env{sys: sys, stdin: stdin, stderr: stderr, verb: spec.name}
	doc, uerr := spec.run(ctx, e, pos, flags)
	if uerr != nil {
		return usageDocument(spec, uerr), ExitUsage
	}
	if doc.header().OK {
		return doc, ExitOK
	}
	return doc, ExitFailed
}

func usageDocument(spec *verbSpec, uerr *usageError) *UsageResult {
	d := &UsageResult{UsageError: true, Usage: agentUsage()}
	msg := uerr.msg
	if spec != nil {
		d.Usage = spec.usage
		msg = spec.name + ": " + msg
		if uerr.flags {
			for _, f := range spec.flags {
				d.AcceptedFlags = append(d.AcceptedFlags, "--"+f)
			}
		}
	}
	if uerr.verbs {
		d.AcceptedVerbs = Verbs()
	}
	d.fail("%s", msg)
	return d
}

// parseArgs splits a verb's arguments into positional arguments and flags.
// Flags are "--name value" or "--name=value", anywhere on the line; "--"
// ends the flags. Anything else starting with "-" is an unknown flag.
func parseArgs(spec *verbSpec, args []string) ([]string, map[string]string, *usageError) {
	var pos []string
	flags := map[string]string{}
	accepted := func() string {
		if len(spec.flags) == 0 {
			return "none"
		}
		fs := make([]string, len(spec.flags))
		for i, f := range spec.flags {
			fs[i] = "--" + f
		}
		return strings.Join(fs, ", ")
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		known := strings.HasPrefix(a, "--")
		if known {
			known = false
			for _, f := range spec.flags {
				if f == name {
					known = true
				}
			}
		}
		if !known {
			return nil, nil, &usageError{msg: fmt.Sprintf("unknown flag %q; accepted flags: %s", a, accepted()), flags: true}
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, &usageError{msg: fmt.Sprintf("flag --%s needs a value", name), flags: true}
			}
			i++
			value = args[i]
		}
		if _, dup := flags[name]; dup {
			return nil, nil, &usageError{msg: fmt.Sprintf("flag --%s given twice", name), flags: true}
		}
		flags[name] = value
	}
	switch {
	case len(pos) < spec.minArgs:
		return nil, nil, usagef("missing argument; usage: %s", spec.usage)
	case len(pos) > spec.maxArgs:
		return nil, nil, usagef("unexpected argument %q; usage: %s", pos[spec.maxArgs], spec.usage)
	}
	return pos, flags, nil
}

// writeDocument writes doc as one line of JSON. It reports false (after
// saying so on stderr) when stdout fails.
func writeDocument(stdout, stderr io.Writer, doc any) bool {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable in usage text and paths
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintf(stderr, "winbake-agent: encoding the result: %v\n", err)
		return false
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "winbake-agent: writing the result: %v\n", err)
		return false
	}
	return true
}

// Unsupported is Main for a build of winbake-agent that has no System (any
// operating system but Windows): it writes the usual document with "ok":
// false and reason as the error, repeats reason on stderr, and returns
// ExitUnsupported.
func Unsupported(args []string, stdout, stderr io.Writer, reason error) uint32 {
	h := &Header{Protocol: Protocol}
	if len(args) > 0 {
		h.Verb = args[0]
	}
	h.fail("%v", reason)
	fmt.Fprintf(stderr, "winbake-agent: %v\n", reason)
	if !writeDocument(stdout, stderr, h) {
		return ExitInternal
	}
	return ExitUnsupported
}
