package winsim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// cmdMaxLine is cmd.exe's command-line limit.
const cmdMaxLine = 8191

const notRecognized = "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"

// runCmd is cmd.exe. Only `cmd.exe [/d] [/q] [/s] /c <line>` is modelled.
func (m *Machine) runCmd(p *proc) uint32 {
	rest := p.cmdline
	sFlag := false
	for {
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, "/") {
			m.unsupportedf("cmd.exe without /c (an interactive shell reading stdin): %q", p.cmdline)
			return 1
		}
		end := strings.IndexAny(rest[1:], " \t/\"")
		if end < 0 {
			end = len(rest) - 1
		}
		sw := strings.ToLower(rest[:1+end])
		rest = rest[1+end:]
		switch sw {
		case "/c":
		case "/d", "/q", "/a", "/u", "/e:on", "/v:off", "/f:off":
			continue
		case "/s":
			sFlag = true
			continue
		default:
			m.unsupportedf("cmd.exe switch %q in %q", sw, p.cmdline)
			return 1
		}
		break
	}
	if _, ok := p.env.get("PROMPT"); !ok {
		p.env.set("PROMPT", "$P$G")
	}
	return m.cmdLine(p, p.cmdQuotes(rest, sFlag))
}

// cmdQuotes applies cmd /c's quote rule (cmd /?): the quotes stay when the
// line holds exactly two, around whitespace and no special character, and
// they enclose the name of an executable; otherwise a leading quote and
// the last quote on the line are removed.
func (p *proc) cmdQuotes(s string, sFlag bool) string {
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	last := strings.LastIndexByte(s, '"')
	if !sFlag && strings.Count(s, `"`) == 2 {
		inner := s[1:last]
		if !strings.ContainsAny(inner, "&<>()@^|") && strings.ContainsAny(inner, " \t") && p.findProgram(inner, searchCmd) != "" {
			return s
		}
	}
	if last == 0 {
		return s[1:]
	}
	return s[1:last] + s[last+1:]
}

// cmdLine runs one cmd.exe command line and returns the errorlevel.
func (m *Machine) cmdLine(p *proc, line string) uint32 {
	if len(line) > cmdMaxLine {
		p.print(p.stderr, "The command line is too long.\r\n")
		return 1
	}
	exp, ok := p.env.expandPercent(line)
	if !ok {
		m.unsupportedf("cmd.exe %%VAR:...%% substitution in %q", line)
		p.print(p.stderr, "The syntax of the command is incorrect.\r\n")
		return 255
	}
	if len(exp) > cmdMaxLine {
		p.print(p.stderr, "The command line is too long.\r\n")
		return 1
	}
	nodes, err := splitCmdOps(exp)
	if err != nil {
		m.unsupportedf("cmd.exe line %q: %v", line, err)
		p.print(p.stderr, err.Error()+"\r\n")
		return 255
	}
	var errorlevel uint32
	ok = true
	for i, n := range nodes {
		if i > 0 {
			switch nodes[i-1].op {
			case "&&":
				if !ok {
					continue
				}
			case "||":
				if ok {
					continue
				}
			}
		}
		r := m.cmdSimple(p, n.text, errorlevel)
		errorlevel, ok = r.errorlevel, r.ok
		if r.exit || p.ctx.Err() != nil {
			break
		}
	}
	return errorlevel
}

type cmdNode struct {
	text string
	op   string // what joins it to the next node: &, &&, ||, or ""
}

// splitCmdOps splits a line at &, && and || outside quotes; a caret
// escapes the next character, `>&` and `<&` are redirections.
func splitCmdOps(s string) ([]cmdNode, error) {
	var nodes []cmdNode
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '^':
			i++
		case c == '(' && strings.TrimSpace(s[start:i]) == "":
			return nil, errors.New("( was unexpected at this time. (command blocks are not modelled)")
		case c == '&' && i > 0 && (s[i-1] == '>' || s[i-1] == '<'):
		case c == '&' || c == '|':
			op := string(c)
			if i+1 < len(s) && s[i+1] == c {
				op += string(c)
			}
			if op == "|" {
				return nil, errors.New("pipes are not modelled")
			}
			if strings.TrimSpace(s[start:i]) == "" {
				return nil, fmt.Errorf("%s was unexpected at this time.", op)
			}
			nodes = append(nodes, cmdNode{text: s[start:i], op: op})
			i += len(op) - 1
			start = i + 1
		}
	}
	last := s[start:]
	if strings.TrimSpace(last) == "" && len(nodes) > 0 && nodes[len(nodes)-1].op != "&" {
		return nil, errors.New("The syntax of the command is incorrect.")
	}
	return append(nodes, cmdNode{text: last}), nil
}

type redirection struct {
	handle int    // 0 stdin, 1 stdout, 2 stderr
	op     string // ">", ">>", "<", ">&"
	target string // file name, or the duplicated handle for >&
}

// parseRedirections removes the redirections from a simple command and
// the carets that escape characters outside quotes; everything else,
// whitespace included, stays (`echo X >> f` leaves "echo X ").
func parseRedirections(s string) (string, []redirection, error) {
	var out []byte
	var rs []redirection
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQ = !inQ
			out = append(out, c)
			continue
		}
		if inQ {
			out = append(out, c)
			continue
		}
		if c == '^' {
			if i+1 < len(s) {
				i++
				out = append(out, s[i])
			}
			continue
		}
		if c != '>' && c != '<' {
			out = append(out, c)
			continue
		}
		r := redirection{handle: 1, op: string(c)}
		if c == '<' {
			r.handle = 0
		}
		if n := len(out); n > 0 && out[n-1] >= '0' && out[n-1] <= '9' && (n == 1 || out[n-2] == ' ' || out[n-2] == '\t') {
			r.handle = int(out[n-1] - '0')
			out = out[:n-1]
		}
		if c == '>' && i+1 < len(s) && s[i+1] == '>' {
			r.op = ">>"
			i++
		}
		if i+1 < len(s) && s[i+1] == '&' {
			if i+2 >= len(s) || s[i+2] < '0' || s[i+2] > '9' {
				return "", nil, errors.New("The syntax of the command is incorrect.")
			}
			r.op, r.target = ">&", string(s[i+2])
			i += 2
			rs = append(rs, r)
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '"' {
			end := strings.IndexByte(s[j+1:], '"')
			if end < 0 {
				r.target = s[j+1:]
				j = len(s)
			} else {
				r.target = s[j+1 : j+1+end]
				j = j + 2 + end
			}
		} else {
			k := j
			for k < len(s) && !strings.ContainsRune(" \t<>|&", rune(s[k])) {
				k++
			}
			r.target = s[j:k]
			j = k
		}
		if r.target == "" {
			return "", nil, errors.New("The syntax of the command is incorrect.")
		}
		rs = append(rs, r)
		i = j - 1
	}
	return string(out), rs, nil
}

type cmdResult struct {
	ok         bool
	exit       bool
	errorlevel uint32
}

var cmdUnmodelled = map[string]bool{
	"if": true, "for": true, "goto": true, "call": true, "start": true, "pushd": true, "popd": true,
	"setlocal": true, "endlocal": true, "copy": true, "move": true, "ren": true, "rename": true,
	"dir": true, "pause": true, "title": true, "color": true, "assoc": true, "ftype": true,
	"path": true, "prompt": true, "verify": true, "vol": true, "date": true, "time": true,
	"mklink": true, "shift": true, "break": true,
}

// cmdSimple runs one command (no &, &&, ||).
func (m *Machine) cmdSimple(p *proc, text string, errorlevel uint32) cmdResult {
	fail := func(code uint32) cmdResult { return cmdResult{errorlevel: code} }
	text, redirs, err := parseRedirections(text)
	if err != nil {
		m.unsupportedf("cmd.exe redirection in %q: %v", text, err)
		p.print(p.stderr, err.Error()+"\r\n")
		return fail(255)
	}
	stdout, stderr := p.stdout, p.stderr
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, r := range redirs {
		var w io.Writer
		switch {
		case r.op == "<" || r.handle == 0:
			m.unsupportedf("cmd.exe input redirection in %q", text)
			p.print(p.stderr, "The syntax of the command is incorrect.\r\n")
			return fail(255)
		case r.op == ">&" && r.target == "1":
			w = stdout
		case r.op == ">&" && r.target == "2":
			w = stderr
		case r.op == ">&":
			m.unsupportedf("cmd.exe redirection to handle %s", r.target)
			return fail(255)
		case strings.EqualFold(r.target, "nul"):
			w = io.Discard
		default:
			var f io.WriteCloser
			var err error
			if r.op == ">>" {
				f, err = p.files.Append(r.target)
			} else {
				f, err = p.files.CreateNew(r.target)
			}
			if err != nil {
				p.print(p.stderr, winErrText(err)+"\r\n")
				return fail(1)
			}
			closers = append(closers, f)
			w = f
		}
		switch r.handle {
		case 1:
			stdout = w
		case 2:
			stderr = w
		default:
			m.unsupportedf("cmd.exe redirection of handle %d", r.handle)
			return fail(255)
		}
	}
	text = strings.TrimLeft(text, " \t@")
	if strings.TrimSpace(text) == "" {
		return cmdResult{ok: true, errorlevel: errorlevel}
	}
	out := func(s string) { stdout.Write(p.encode(s)) }
	errOut := func(s string) { stderr.Write(p.encode(s)) }

	lower := strings.ToLower(text)
	if strings.HasPrefix(lower, "echo") && (len(text) == 4 || strings.ContainsRune(" \t.,;=(/:+[]\\", rune(text[4]))) {
		arg := ""
		if len(text) > 4 {
			arg = text[5:]
		}
		switch t := strings.ToLower(strings.TrimSpace(arg)); {
		case len(text) > 4 && text[4] != ' ' && text[4] != '\t':
			out(arg + "\r\n")
		case t == "":
			out("ECHO is on.\r\n")
		case t == "on" || t == "off":
		default:
			out(arg + "\r\n")
		}
		return cmdResult{ok: true, errorlevel: errorlevel}
	}
	nameEnd := strings.IndexAny(text, " \t,;=(/")
	if nameEnd < 0 {
		nameEnd = len(text)
	}
	name, args := strings.ToLower(text[:nameEnd]), strings.TrimLeft(text[nameEnd:], " \t,;=")
	switch name {
	case "rem", "cls":
		return cmdResult{ok: true, errorlevel: errorlevel}
	case "ver":
		out(fmt.Sprintf("\r\nMicrosoft Windows [Version %s]\r\n", m.WindowsVersion().Version()))
		return cmdResult{ok: true, errorlevel: errorlevel}
	case "exit":
		f := strings.Fields(args)
		if len(f) > 0 && strings.EqualFold(f[0], "/b") {
			f = f[1:]
		}
		code := errorlevel
		if len(f) > 0 {
			n, err := strconv.ParseInt(f[0], 0, 64)
			if err != nil {
				n = 0
			}
			code = uint32(int32(n))
		}
		return cmdResult{ok: true, exit: true, errorlevel: code}
	case "set":
		return m.cmdSet(p, args, out, errOut, errorlevel)
	case "type":
		files := splitArgs(args)
		if len(files) != 1 {
			m.unsupportedf("cmd.exe type with %d files: %q", len(files), args)
			errOut("The syntax of the command is incorrect.\r\n")
			return fail(1)
		}
		data, err := p.files.ReadFile(files[0])
		if err != nil {
			errOut(winErrText(err) + "\r\n")
			return fail(1)
		}
		stdout.Write(data)
		return cmdResult{ok: true, errorlevel: errorlevel}
	case "del", "erase":
		var files []string
		for _, a := range splitArgs(args) {
			switch strings.ToLower(a) {
			case "/f", "/q":
			default:
				if strings.HasPrefix(a, "/") || strings.ContainsAny(a, "*?") {
					m.unsupportedf("cmd.exe del %q", a)
					errOut("The syntax of the command is incorrect.\r\n")
					return fail(1)
				}
				files = append(files, a)
			}
		}
		if len(files) == 0 {
			errOut("The syntax of the command is incorrect.\r\n")
			return fail(1)
		}
		for _, f := range files {
			abs, err := p.files.Abs(f)
			if err != nil {
				errOut(winErrText(err) + "\r\n")
				continue
			}
			if ok, dir := p.files.exists(f); !ok {
				errOut("Could Not Find " + abs + "\r\n")
			} else if dir {
				m.unsupportedf("cmd.exe del of the directory %s (deletes its files after a prompt)", abs)
				return fail(1)
			} else if err := p.files.Remove(f); err != nil {
				errOut(winErrText(err) + "\r\n")
			}
		}
		// del leaves the errorlevel alone, even when nothing was found.
		return cmdResult{ok: true, errorlevel: errorlevel}
	case "mkdir", "md":
		dirs := splitArgs(args)
		if len(dirs) == 0 {
			errOut("The syntax of the command is incorrect.\r\n")
			return fail(1)
		}
		res := cmdResult{ok: true, errorlevel: errorlevel}
		for _, d := range dirs {
			if ok, _ := p.files.exists(d); ok {
				errOut("A subdirectory or file " + d + " already exists.\r\n")
				res = fail(1)
				continue
			}
			if err := p.files.MkdirAll(d); err != nil {
				errOut(winErrText(err) + "\r\n")
				res = fail(1)
			}
		}
		return res
	case "rmdir", "rd":
		recursive := false
		var dirs []string
		for _, a := range splitArgs(args) {
			switch strings.ToLower(a) {
			case "/s":
				recursive = true
			case "/q":
			default:
				dirs = append(dirs, a)
			}
		}
		res := cmdResult{ok: true, errorlevel: errorlevel}
		for _, d := range dirs {
			ok, dir := p.files.exists(d)
			switch {
			case !ok:
				errOut("The system cannot find the file specified.\r\n")
				res = fail(2)
			case !dir:
				errOut("The directory name is invalid.\r\n")
				res = fail(267)
			case recursive:
				if err := p.files.RemoveAll(d); err != nil {
					errOut(winErrText(err) + "\r\n")
					res = fail(1)
				}
			default:
				if err := p.files.Remove(d); err != nil {
					errOut(winErrText(err) + "\r\n")
					res = fail(145)
				}
			}
		}
		return res
	case "cd", "chdir":
		a := strings.TrimSpace(args)
		if strings.HasPrefix(strings.ToLower(a), "/d") {
			a = strings.TrimSpace(a[2:])
		}
		a = strings.Trim(a, `"`)
		if a == "" {
			out(p.cwd() + "\r\n")
			return cmdResult{ok: true, errorlevel: errorlevel}
		}
		if ok, dir := p.files.exists(a); !ok || !dir {
			errOut("The system cannot find the path specified.\r\n")
			return fail(1)
		}
		abs, _ := p.files.Abs(a)
		p.files = p.files.withCwd(abs)
		return cmdResult{ok: true, errorlevel: errorlevel}
	}
	if cmdUnmodelled[name] {
		m.unsupportedf("cmd.exe built-in %q is not modelled: %q", name, text)
		errOut(fmt.Sprintf(notRecognized, text[:nameEnd]))
		return fail(9009)
	}
	// An external program.
	// The program name ends at a blank outside quotes; quotes inside it
	// toggle quoting and are dropped from the name.
	end, inQ := 0, false
	for ; end < len(text); end++ {
		if text[end] == '"' {
			inQ = !inQ
		} else if !inQ && (text[end] == ' ' || text[end] == '\t') {
			break
		}
	}
	prog, tail := text[:end], strings.TrimLeft(text[end:], " \t")
	abs := p.findProgram(strings.ReplaceAll(prog, `"`, ""), searchCmd)
	if abs == "" {
		m.unsupportedf("cmd.exe: %q is not a command or program of the simulated Windows (line %q)", prog, text)
		errOut(fmt.Sprintf(notRecognized, prog))
		return fail(9009)
	}
	c := p.child(stdout, stderr)
	code, ran := c.exec(abs, tail)
	if !ran {
		m.unsupportedf("cmd.exe runs %s, a program the stand-in cannot run", abs)
		errOut(fmt.Sprintf(notRecognized, prog))
		return fail(9009)
	}
	return cmdResult{ok: code == 0, errorlevel: code}
}

// cmdSet is cmd's `set`: list, list by prefix, assign, or unset.
func (m *Machine) cmdSet(p *proc, args string, out, errOut func(string), errorlevel uint32) cmdResult {
	a := strings.TrimSpace(args)
	if strings.HasPrefix(a, "/") {
		m.unsupportedf("cmd.exe set %q", a)
		errOut("The syntax of the command is incorrect.\r\n")
		return cmdResult{errorlevel: 1}
	}
	if strings.HasPrefix(a, `"`) {
		if end := strings.LastIndexByte(a, '"'); end > 0 {
			a = a[1:end]
		}
	}
	if i := strings.IndexByte(a, '='); i > 0 {
		name, value := a[:i], a[i+1:]
		if value == "" {
			p.env.unset(name)
		} else {
			p.env.set(name, value)
		}
		return cmdResult{ok: true, errorlevel: errorlevel}
	} else if i == 0 {
		errOut("The syntax of the command is incorrect.\r\n")
		return cmdResult{errorlevel: 1}
	}
	found := false
	for _, v := range p.env.sorted() {
		if a == "" || strings.HasPrefix(strings.ToUpper(v.Name), strings.ToUpper(a)) {
			out(v.Name + "=" + v.Value + "\r\n")
			found = true
		}
	}
	if !found {
		errOut("Environment variable " + a + " not defined\r\n")
		return cmdResult{errorlevel: 1}
	}
	return cmdResult{ok: true, errorlevel: errorlevel}
}

// winErrText is the Windows message for a file-system error.
func winErrText(err error) string {
	var e Errno
	if errors.As(err, &e) {
		return e.Error()
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
