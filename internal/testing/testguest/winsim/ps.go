package winsim

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// masterzenPrefix is what masterzen/winrm's Powershell() puts before every
// script.
const masterzenPrefix = "$ProgressPreference = 'SilentlyContinue';"

// psFileNotFoundExit is powershell.exe's exit code when the -File script
// does not exist (-196608).
const psFileNotFoundExit uint32 = 0xFFFD0000

// runPowerShell is powershell.exe (Windows PowerShell 5.1) with -Command,
// -EncodedCommand, -File or - (script from stdin), and the options that do
// not change how a script runs.
func (m *Machine) runPowerShell(p *proc) uint32 {
	var script, file string
	mode := ""
	args := p.args
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-" {
			mode = "stdin"
			break
		}
		if !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "/") {
			mode, script = "command", strings.Join(args[i:], " ")
			break
		}
		opt := strings.ToLower(a[1:])
		value := func() (string, bool) {
			if i+1 >= len(args) {
				m.unsupportedf("powershell.exe %s without a value", a)
				return "", false
			}
			i++
			return args[i], true
		}
		switch {
		case opt == "noprofile" || opt == "nop", opt == "noninteractive" || opt == "noni",
			opt == "nologo" || opt == "nol", opt == "sta", opt == "mta":
		case opt == "executionpolicy" || opt == "ep" || opt == "ex" || opt == "exec",
			opt == "inputformat" || opt == "inp" || opt == "if",
			opt == "windowstyle" || opt == "w" || opt == "win":
			if _, ok := value(); !ok {
				return 1
			}
		case opt == "outputformat" || opt == "of" || opt == "o":
			v, ok := value()
			if !ok {
				return 1
			}
			if !strings.EqualFold(v, "text") {
				m.unsupportedf("powershell.exe -OutputFormat %s", v)
				return 1
			}
		case opt == "encodedcommand" || opt == "enc" || opt == "e" || opt == "ec":
			v, ok := value()
			if !ok {
				return 1
			}
			s, err := decodeEncodedCommand(v)
			if err != nil {
				m.unsupportedf("powershell.exe -EncodedCommand: %v", err)
				p.print(p.stderr, "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n")
				return 1
			}
			mode, script = "command", s
		case opt == "command" || opt == "c":
			rest := strings.Join(args[i+1:], " ")
			if rest == "-" {
				mode = "stdin"
			} else {
				mode, script = "command", rest
			}
			i = len(args)
		case opt == "file" || opt == "f":
			v, ok := value()
			if !ok {
				return 1
			}
			if i+1 < len(args) {
				m.unsupportedf("powershell.exe -File with script arguments %q", args[i+1:])
				return 1
			}
			mode, file = "file", v
		default:
			m.unsupportedf("powershell.exe option %q", a)
			p.print(p.stderr, fmt.Sprintf("%s : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.\r\n", a, a))
			return 1
		}
	}
	switch mode {
	case "":
		m.unsupportedf("powershell.exe without a command (interactive): %q", p.cmdline)
		return 1
	case "stdin":
		data, _ := io.ReadAll(p.stdin)
		script = string(data)
	case "file":
		if !strings.EqualFold(fileExt(file), ".ps1") {
			p.print(p.stderr, "Processing -File '"+file+"' failed because the file does not have a '.ps1' extension. Specify a valid Windows PowerShell script file name, and then try again.\r\n")
			return psFileNotFoundExit
		}
		data, err := p.files.ReadFile(file)
		if err != nil {
			p.print(p.stderr, "The argument '"+file+"' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n")
			return psFileNotFoundExit
		}
		script = decodeScriptFile(data)
	}
	rt := newPSRuntime(m, p, mode == "file")
	return rt.run(script)
}

func fileExt(p string) string {
	i := strings.LastIndexAny(p, `.\/`)
	if i < 0 || p[i] != '.' {
		return ""
	}
	return p[i:]
}

// decodeEncodedCommand is base64 of UTF-16LE.
func decodeEncodedCommand(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	if len(b)%2 != 0 {
		return "", errors.New("odd number of bytes for UTF-16LE")
	}
	return decodeUTF16LE(b), nil
}

func decodeUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

// decodeScriptFile reads a .ps1 or text file as Windows PowerShell 5.1
// does: a BOM selects UTF-8 or UTF-16LE, otherwise the ANSI code page (1252).
func decodeScriptFile(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return string(b[3:])
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		return decodeUTF16LE(b[2:])
	}
	s, _ := charmap.Windows1252.NewDecoder().Bytes(b)
	return string(s)
}

// psExit unwinds the script with an exit code.
type psExit struct{ code uint32 }

func (e *psExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// psStop is a script-terminating error (throw, -ErrorAction Stop).
type psStop struct{ rec *psErrorRecord }

func (e *psStop) Error() string { return e.rec.message }

// psStatementError ends the statement; the script goes on.
type psStatementError struct{ rec *psErrorRecord }

func (e *psStatementError) Error() string { return e.rec.message }

// psUnsupported is a construct or command the stand-in does not model.
type psUnsupported struct {
	msg  string
	name string // what PowerShell reports as not recognized
	at   psPos
}

func (e *psUnsupported) Error() string { return e.msg }

type psErrorRecord struct {
	message  string
	activity string // "Remove-Item", or "" for the error's own text
	category string // "ObjectNotFound"
	target   string
	// targetType follows the target in CategoryInfo (default "String").
	targetType string
	exception  string // "ItemNotFoundException"
	fqid       string
	at         psPos
	source     string // the failing command's text
}

// psRuntime runs one powershell.exe script.
type psRuntime struct {
	m        *Machine
	p        *proc
	file     bool // -File: the exit code does not follow $?
	vars     map[string]any
	lastOK   bool
	lastExit *int64
	errs     *clixml
	progress bool // the module-loading progress record was written
	sink     *[]any
	src      []rune
	cwd      string
	pid      int64           // $PID
	assigned map[string]bool // variables the script assigns somewhere
}

func newPSRuntime(m *Machine, p *proc, file bool) *psRuntime {
	return &psRuntime{
		m: m, p: p, file: file,
		vars:   map[string]any{"progresspreference": "Continue", "erroractionpreference": "Continue"},
		lastOK: true,
		errs:   &clixml{w: p.stderr},
		cwd:    p.cwd(),
		pid:    newPSPID(),
	}
}

// run executes the script and returns the process exit code.
func (rt *psRuntime) run(script string) uint32 {
	defer rt.errs.close()
	if strings.HasPrefix(script, masterzenPrefix) {
		script = script[len(masterzenPrefix):]
		rt.vars["progresspreference"] = "SilentlyContinue"
	}
	rt.src = []rune(script)
	if r, ok := matchWinrmcpRestore(script); ok {
		return rt.winrmcpRestore(r)
	}
	stmts, err := parsePS(script)
	if err != nil {
		var pe *psParseError
		errors.As(err, &pe)
		return rt.unsupported(&psUnsupported{msg: "PowerShell: " + pe.msg, at: psPos{pe.offset}})
	}
	rt.assigned = psAssignedNames(stmts)
	err = rt.exec(stmts)
	var ex *psExit
	var stop *psStop
	var un *psUnsupported
	switch {
	case errors.As(err, &ex):
		return ex.code
	case errors.As(err, &stop):
		rt.writeError(stop.rec)
		return 1
	case errors.As(err, &un):
		return rt.unsupported(un)
	case err != nil:
		rt.m.unsupportedf("PowerShell: %v", err)
		return 1
	}
	if rt.p.ctx.Err() != nil {
		return ExitTerminated
	}
	if !rt.file && !rt.lastOK {
		return 1
	}
	return 0
}

// unsupported reports a construct the stand-in does not model and answers
// as PowerShell answers a command it does not know: an error record, exit 1.
func (rt *psRuntime) unsupported(u *psUnsupported) uint32 {
	line, col, text := rt.position(u.at)
	rt.m.unsupportedf("%s (line %d char %d: %q)", u.msg, line, col, text)
	name := u.name
	if name == "" {
		name = strings.Fields(text + " ?")[0]
	}
	rt.writeError(&psErrorRecord{
		message:   fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", name),
		activity:  name,
		category:  "ObjectNotFound",
		target:    name,
		exception: "CommandNotFoundException",
		fqid:      "CommandNotFoundException",
		at:        u.at,
	})
	return 1
}

// position returns the line, column and text of the line at pos.
func (rt *psRuntime) position(at psPos) (line, col int, text string) {
	line = 1
	start := 0
	for i := 0; i < at.offset && i < len(rt.src); i++ {
		if rt.src[i] == '\n' {
			line++
			start = i + 1
		}
	}
	col = at.offset - start + 1
	end := start
	for end < len(rt.src) && rt.src[end] != '\n' && rt.src[end] != '\r' {
		end++
	}
	if start > len(rt.src) {
		start = len(rt.src)
	}
	return line, col, string(rt.src[start:end])
}

// writeError writes a formatted error record to the error stream.
func (rt *psRuntime) writeError(rec *psErrorRecord) {
	line, col, text := rt.position(rec.at)
	var b strings.Builder
	if rec.activity != "" {
		b.WriteString(rec.activity + " : ")
	}
	b.WriteString(rec.message + "\n")
	fmt.Fprintf(&b, "At line:%d char:%d\n+ %s\n", line, col, strings.TrimRight(text, " \t"))
	width := len([]rune(rec.source))
	if width == 0 {
		width = 1
	}
	fmt.Fprintf(&b, "+ %s%s\n", strings.Repeat(" ", max(col-1, 0)), strings.Repeat("~", width))
	targetType := rec.targetType
	if targetType == "" {
		targetType = "String"
	}
	fmt.Fprintf(&b, "    + CategoryInfo          : %s: (%s:%s) [%s], %s\n", rec.category, rec.target, targetType, rec.activity, rec.exception)
	fmt.Fprintf(&b, "    + FullyQualifiedErrorId : %s\n \n", rec.fqid)
	rt.errs.errorText(b.String())
}

func (rt *psRuntime) silencedProgress() bool {
	v, _ := rt.vars["progresspreference"].(string)
	return strings.EqualFold(v, "SilentlyContinue") || strings.EqualFold(v, "Ignore")
}

// moduleCommand notes the use of a command from an auto-loaded module:
// the first one writes the "Preparing modules for first use." progress
// record unless progress is silenced.
func (rt *psRuntime) moduleCommand() {
	if rt.progress || rt.silencedProgress() || rt.m.opts.QuietModuleLoad {
		return
	}
	rt.progress = true
	rt.errs.progress()
}

func (rt *psRuntime) exec(stmts []psStmt) error {
	for _, s := range stmts {
		if err := rt.p.ctx.Err(); err != nil {
			return &psExit{code: ExitTerminated}
		}
		if err := rt.stmt(s); err != nil {
			var se *psStatementError
			if errors.As(err, &se) {
				rt.lastOK = false
				if strings.EqualFold(fmt.Sprint(rt.vars["erroractionpreference"]), "Stop") {
					return &psStop{rec: se.rec}
				}
				rt.writeError(se.rec)
				continue
			}
			return err
		}
	}
	return nil
}

func (rt *psRuntime) stmt(s psStmt) error {
	switch s := s.(type) {
	case *psPipeline:
		out, err := rt.pipeline(s)
		if err != nil {
			return err
		}
		rt.emit(out)
	case *psAssign:
		out, err := rt.capture(func() error {
			vals, err := rt.pipeline(s.value)
			rt.emit(vals)
			return err
		})
		if err != nil {
			return err
		}
		rt.setVar(s.name, unwrap(out, false))
		rt.lastOK = true
	case *psIf:
		for i, c := range s.conds {
			out, err := rt.capture(func() error {
				vals, err := rt.pipeline(c)
				rt.emit(vals)
				return err
			})
			if err != nil {
				return err
			}
			if truthy(unwrap(out, false)) {
				return rt.exec(s.bodies[i])
			}
		}
		if s.hasElse {
			return rt.exec(s.elseDo)
		}
	case *psExitStmt:
		if s.value == nil {
			return &psExit{code: 0}
		}
		out, err := rt.capture(func() error {
			vals, err := rt.pipeline(s.value)
			rt.emit(vals)
			return err
		})
		if err != nil {
			return err
		}
		n, ok := toInt(unwrap(out, false))
		if !ok {
			return &psUnsupported{msg: fmt.Sprintf("exit with the non-numeric value %v", unwrap(out, false)), at: s.at}
		}
		return &psExit{code: uint32(int32(n))}
	case *psThrowStmt:
		msg := "ScriptHalted"
		if s.value != nil {
			out, err := rt.capture(func() error {
				vals, err := rt.pipeline(s.value)
				rt.emit(vals)
				return err
			})
			if err != nil {
				return err
			}
			msg = toString(unwrap(out, false))
		}
		_, _, text := rt.position(s.at)
		return &psStop{rec: &psErrorRecord{message: msg, category: "OperationStopped", target: msg, exception: "RuntimeException", fqid: msg, at: s.at, source: strings.TrimSpace(text)}}
	default:
		return &psUnsupported{msg: fmt.Sprintf("statement %T", s), at: s.pos()}
	}
	return nil
}

// capture runs f with output collected instead of written.
func (rt *psRuntime) capture(f func() error) ([]any, error) {
	var out []any
	saved := rt.sink
	rt.sink = &out
	err := f()
	rt.sink = saved
	return out, err
}

// emit sends values down the output stream: into the capture, or
// formatted onto stdout.
func (rt *psRuntime) emit(vals []any) {
	if rt.sink != nil {
		*rt.sink = append(*rt.sink, flatten(vals)...)
		return
	}
	for _, v := range flatten(vals) {
		if v == nil {
			continue
		}
		if o, ok := v.(psStructured); ok {
			// PowerShell formats it as a table or a list for the host.
			rt.m.unsupportedf("PowerShell: writing a %s to the output (its host formatting is not modelled)", o.typeName())
			continue
		}
		rt.p.print(rt.p.stdout, formatForHost(v))
	}
}

// unwrap turns pipeline output into a value: nothing is $null, one object
// is itself, several are an array (always an array when array is set).
func unwrap(out []any, array bool) any {
	if array {
		return append([]any{}, out...)
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

func flatten(vals []any) []any {
	var out []any
	for _, v := range vals {
		if a, ok := v.([]any); ok {
			out = append(out, flatten(a)...)
			continue
		}
		out = append(out, v)
	}
	return out
}

// getVar reads a variable (psautovars.go says from where). A name that is
// neither assigned by the script nor modelled is a *psUnsupported at at.
func (rt *psRuntime) getVar(name string, at psPos) (any, error) {
	n := psVarKey(name)
	if strings.HasPrefix(n, "env:") {
		v, ok := rt.p.env.get(n[len("env:"):])
		if !ok {
			return nil, nil
		}
		return v, nil
	}
	if v, ok := rt.vars[n]; ok {
		return v, nil
	}
	if v, ok := rt.automaticVar(n); ok {
		return v, nil
	}
	if rt.assigned[n] {
		return nil, nil
	}
	return nil, &psUnsupported{
		msg:  fmt.Sprintf("PowerShell variable $%s: the script does not assign it and the stand-in does not model it (an automatic variable Windows provides would not read as $null)", name),
		name: "$" + name,
		at:   at,
	}
}

func (rt *psRuntime) setVar(name string, v any) {
	n := strings.ToLower(name)
	for _, scope := range []string{"global:", "script:", "local:", "private:", "variable:"} {
		n = strings.TrimPrefix(n, scope)
	}
	if strings.HasPrefix(n, "env:") {
		if v == nil || toString(v) == "" {
			rt.p.env.unset(name[len("env:"):])
		} else {
			rt.p.env.set(name[len("env:"):], toString(v))
		}
		return
	}
	rt.vars[n] = v
}

// builtinVariables always exist (for Test-Path variable:...).
var builtinVariables = map[string]bool{
	"progresspreference": true, "erroractionpreference": true, "warningpreference": true,
	"verbosepreference": true, "debugpreference": true, "confirmpreference": true,
	"informationpreference": true, "pwd": true, "home": true, "pshome": true, "host": true,
	"true": true, "false": true, "null": true, "psversiontable": true, "pid": true,
	"executioncontext": true, "shellid": true, "?": true, "^": true, "$": true, "error": true,
}

// psPathInfo is what Get-Location returns.
type psPathInfo struct{ path string }

// psFileItem is a FileInfo or DirectoryInfo (New-Item's output).
type psFileItem struct {
	parent string
	name   string
	dir    bool
	length int64
	mtime  time.Time
}

func formatForHost(v any) string {
	switch v := v.(type) {
	case *psPathInfo:
		return "\r\nPath\r\n----\r\n" + v.path + "\r\n\r\n\r\n"
	case *psFileItem:
		mode, length := "-a----", fmt.Sprint(v.length)
		if v.dir {
			mode, length = "d-----", ""
		}
		return fmt.Sprintf("\r\n\r\n    Directory: %s\r\n\r\n\r\nMode                 LastWriteTime         Length Name\r\n----                 -------------         ------ ----\r\n%s       %10s %8s %14s %s\r\n\r\n\r\n",
			v.parent, mode, v.mtime.Format("1/2/2006"), v.mtime.Format("3:04 PM"), length, v.name)
	case []byte:
		var b strings.Builder
		for _, c := range v {
			fmt.Fprintf(&b, "%d\r\n", c)
		}
		return b.String()
	}
	return toString(v) + "\r\n"
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return fmt.Sprint(v)
	case *psPathInfo:
		return v.path
	case *psFileItem:
		return strings.TrimSuffix(v.parent, `\`) + `\` + v.name
	case []byte:
		parts := make([]string, len(v))
		for i, c := range v {
			parts[i] = fmt.Sprint(c)
		}
		return strings.Join(parts, " ")
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = toString(x)
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(v)
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case int64:
		return v != 0
	case []any:
		switch len(v) {
		case 0:
			return false
		case 1:
			return truthy(v[0])
		}
		return true
	case []byte:
		return len(v) > 0
	}
	return true
}

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case nil:
		return 0, true
	case int64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case string:
		var n int64
		_, err := fmt.Sscan(strings.TrimSpace(v), &n)
		return n, err == nil
	}
	return 0, false
}
