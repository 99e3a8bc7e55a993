package winsim

import (
	"errors"
	"fmt"
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

type cmdResult struct {
	ok         bool
	exit       bool
	errorlevel uint32
}

// cmdSimple runs one command (no &, &&, ||): a built-in of cmd's own
// (cmdBuiltins) or an external program.
func (m *Machine) cmdSimple(p *proc, text string, errorlevel uint32) cmdResult {
	text, redirs, err := parseRedirections(text)
	if err != nil {
		m.unsupportedf("cmd.exe redirection in %q: %v", text, err)
		p.print(p.stderr, err.Error()+"\r\n")
		return cmdResult{errorlevel: 255}
	}
	stdout, stderr, closers, failed := m.openRedirections(p, text, redirs)
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	if failed != nil {
		return *failed
	}
	text = strings.TrimLeft(text, " \t@")
	if strings.TrimSpace(text) == "" {
		return cmdResult{ok: true, errorlevel: errorlevel}
	}
	c := &cmdCall{m: m, p: p, stdout: stdout, stderr: stderr, errorlevel: errorlevel}
	if isEcho(text) {
		return c.echo(text)
	}
	nameEnd := strings.IndexAny(text, " \t,;=(/")
	if nameEnd < 0 {
		nameEnd = len(text)
	}
	name := strings.ToLower(text[:nameEnd])
	c.args = strings.TrimLeft(text[nameEnd:], " \t,;=")
	if builtin, ok := cmdBuiltins[name]; ok {
		return builtin(c)
	}
	if cmdUnmodelled[name] {
		m.unsupportedf("cmd.exe built-in %q is not modelled: %q", name, text)
		c.errOut(fmt.Sprintf(notRecognized, text[:nameEnd]))
		return c.fail(9009)
	}
	return c.external(text)
}

// external runs an external program.
func (c *cmdCall) external(text string) cmdResult {
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
	abs := c.p.findProgram(strings.ReplaceAll(prog, `"`, ""), searchCmd)
	if abs == "" {
		c.m.unsupportedf("cmd.exe: %q is not a command or program of the simulated Windows (line %q)", prog, text)
		c.errOut(fmt.Sprintf(notRecognized, prog))
		return c.fail(9009)
	}
	child := c.p.child(c.stdout, c.stderr)
	code, ran := child.exec(abs, tail)
	if !ran {
		c.m.unsupportedf("cmd.exe runs %s, a program the stand-in cannot run", abs)
		c.errOut(fmt.Sprintf(notRecognized, prog))
		return c.fail(9009)
	}
	return cmdResult{ok: code == 0, errorlevel: code}
}
