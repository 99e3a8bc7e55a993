package winsim

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The PowerShell subset: statements (pipelines, assignments, if/elseif/
// else, exit, return, throw), commands with parameters and arguments in
// argument mode, and expressions with strings (expandable and verbatim),
// numbers, variables ($env:X, scoped), (…), $(…), @(…), member and static
// method calls, the comma, -f, comparison, arithmetic +/- and logical
// operators. Anything else is a parse error the stand-in reports.

type psParseError struct {
	offset int
	msg    string
}

func (e *psParseError) Error() string { return e.msg }

type psParser struct {
	src     []rune
	pos     int
	depth   int  // inside ( ), where newlines do not end an expression
	noComma bool // in a method's argument list, where the comma separates
}

func parsePS(script string) (stmts []psStmt, err error) {
	p := &psParser{src: []rune(script)}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*psParseError)
			if !ok {
				panic(r)
			}
			err = pe
		}
	}()
	stmts = p.statements(0)
	if p.pos < len(p.src) {
		p.fail("unexpected %q", string(p.src[p.pos]))
	}
	return stmts, nil
}

func (p *psParser) fail(format string, args ...any) {
	panic(&psParseError{offset: p.pos, msg: fmt.Sprintf(format, args...)})
}

func (p *psParser) peek() rune {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *psParser) peekAt(i int) rune {
	if p.pos+i < len(p.src) {
		return p.src[p.pos+i]
	}
	return 0
}

func (p *psParser) eof() bool { return p.pos >= len(p.src) }

// space skips blanks, line continuations and comments; newlines too when nl.
func (p *psParser) space(nl bool) {
	for !p.eof() {
		c := p.peek()
		switch {
		case c == ' ' || c == '\t' || c == '\f' || c == '\u00a0':
			p.pos++
		case (c == '\r' || c == '\n') && nl:
			p.pos++
		case c == '`' && (p.peekAt(1) == '\n' || p.peekAt(1) == '\r'):
			p.pos += 2
			if p.peek() == '\n' {
				p.pos++
			}
		case c == '<' && p.peekAt(1) == '#':
			end := strings.Index(string(p.src[p.pos:]), "#>")
			if end < 0 {
				p.fail("missing #> of a block comment")
			}
			p.pos += len([]rune(string(p.src[p.pos:])[:end])) + 2
		case c == '#':
			for !p.eof() && p.peek() != '\n' && p.peek() != '\r' {
				p.pos++
			}
		default:
			return
		}
	}
}

// statements parses until end (')' or '}'), or EOF when end is 0.
func (p *psParser) statements(end rune) []psStmt {
	var out []psStmt
	for {
		p.space(true)
		for p.peek() == ';' {
			p.pos++
			p.space(true)
		}
		if p.eof() || end != 0 && p.peek() == end {
			return out
		}
		if s := p.statement(); s != nil {
			out = append(out, s)
		}
		p.space(false)
		switch c := p.peek(); {
		case c == ';' || c == '\r' || c == '\n':
			p.pos++
		case p.eof(), end != 0 && c == end:
		default:
			p.fail("unexpected %q after a statement", string(c))
		}
	}
}

func isNameRune(c rune) bool {
	return unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_' || c == '-'
}

// keyword returns the bareword at the position (lower case) without
// consuming it.
func (p *psParser) keyword() string {
	i := p.pos
	for i < len(p.src) && (unicode.IsLetter(p.src[i])) {
		i++
	}
	if i < len(p.src) && (isNameRune(p.src[i]) || p.src[i] == '.' || p.src[i] == '\\' || p.src[i] == ':') {
		return ""
	}
	return strings.ToLower(string(p.src[p.pos:i]))
}

func (p *psParser) statement() psStmt {
	at := psPos{p.pos}
	switch kw := p.keyword(); kw {
	case "if":
		return p.ifStmt()
	case "exit", "return":
		p.pos += len(kw)
		p.space(false)
		s := &psExitStmt{at: at}
		if !p.endOfStatement() {
			s.value = p.pipeline()
		}
		return s
	case "throw":
		p.pos += len(kw)
		p.space(false)
		s := &psThrowStmt{at: at}
		if !p.endOfStatement() {
			s.value = p.pipeline()
		}
		return s
	case "for", "foreach", "while", "do", "try", "catch", "finally", "function", "filter", "switch",
		"param", "trap", "break", "continue", "begin", "process", "end", "class", "enum", "data",
		"workflow", "dynamicparam", "else", "elseif", "until", "using":
		p.fail("the %q statement is not modelled", kw)
	}
	if p.peek() == '$' {
		save := p.pos
		name := p.variableName()
		p.space(false)
		if p.peek() == '=' && p.peekAt(1) != '=' {
			p.pos++
			p.space(true)
			return &psAssign{at: at, name: name, value: p.pipeline()}
		}
		if (p.peek() == '+' || p.peek() == '-') && p.peekAt(1) == '=' {
			p.fail("compound assignment is not modelled")
		}
		p.pos = save
	}
	return p.pipeline()
}

func (p *psParser) endOfStatement() bool {
	c := p.peek()
	return p.eof() || c == ';' || c == '\n' || c == '\r' || c == '}' || c == ')'
}

func (p *psParser) ifStmt() psStmt {
	s := &psIf{at: psPos{p.pos}}
	p.pos += 2
	for {
		p.space(true)
		if p.peek() != '(' {
			p.fail("missing ( after if")
		}
		p.pos++
		p.depth++
		p.space(true)
		cond := p.pipeline()
		p.space(true)
		if p.peek() != ')' {
			p.fail("missing ) in if")
		}
		p.pos++
		p.depth--
		s.conds = append(s.conds, cond)
		s.bodies = append(s.bodies, p.block())
		save := p.pos
		p.space(true)
		switch p.keyword() {
		case "elseif":
			p.pos += len("elseif")
			continue
		case "else":
			p.pos += len("else")
			s.elseDo = p.block()
			s.hasElse = true
			return s
		}
		p.pos = save
		return s
	}
}

func (p *psParser) block() []psStmt {
	p.space(true)
	if p.peek() != '{' {
		p.fail("missing { of a statement block")
	}
	p.pos++
	depth := p.depth
	p.depth = 0
	body := p.statements('}')
	p.depth = depth
	if p.peek() != '}' {
		p.fail("missing } of a statement block")
	}
	p.pos++
	return body
}

func (p *psParser) pipeline() *psPipeline {
	pl := &psPipeline{at: psPos{p.pos}}
	for {
		p.space(false)
		pl.elems = append(pl.elems, p.element(len(pl.elems) == 0))
		p.space(false)
		for p.redirection(pl) {
			p.space(false)
		}
		if p.peek() == '|' && p.peekAt(1) != '|' {
			if len(pl.redirs) > 0 {
				p.fail("a redirection before | is not modelled")
			}
			p.pos++
			p.space(true)
			continue
		}
		return pl
	}
}

// redirection parses `> $null`, `2>&1`, `*> $null` and similar.
func (p *psParser) redirection(pl *psPipeline) bool {
	c := p.peek()
	stream := "1"
	n := 0
	switch {
	case (c >= '1' && c <= '6' || c == '*') && p.peekAt(1) == '>':
		stream, n = string(c), 1
	case c == '>':
	default:
		return false
	}
	p.pos += n + 1
	if p.peek() == '>' {
		p.fail("appending redirection is not modelled")
	}
	if p.peek() == '&' {
		p.pos++
		if p.peek() != '1' {
			p.fail("redirection to stream %q is not modelled", string(p.peek()))
		}
		p.pos++
		pl.redirs = append(pl.redirs, psRedir{stream: stream, target: "&1"})
		return true
	}
	p.space(false)
	start := p.pos
	for !p.eof() && !unicode.IsSpace(p.peek()) && !strings.ContainsRune(";|)}", p.peek()) {
		p.pos++
	}
	target := string(p.src[start:p.pos])
	if !strings.EqualFold(target, "$null") {
		p.fail("redirection to %q is not modelled (only $null)", target)
	}
	pl.redirs = append(pl.redirs, psRedir{stream: stream, target: "$null"})
	return true
}

func isExprStart(c, next rune) bool {
	switch {
	case c == '$' || c == '\'' || c == '"' || c == '(' || c == '[' || c == '!':
		return true
	case c == '@' && (next == '(' || next == '"' || next == '\''):
		return true
	case c >= '0' && c <= '9':
		return true
	case c == '-' && next >= '0' && next <= '9':
		return true
	}
	return false
}

func (p *psParser) element(first bool) *psElem {
	start := p.pos
	e := &psElem{at: psPos{p.pos}}
	c := p.peek()
	switch {
	case c == '&' && p.peekAt(1) != '&':
		p.pos++
		p.space(false)
		e.call = p.argValue()
		e.args = p.args()
	case c == '.' && (p.peekAt(1) == ' ' || p.peekAt(1) == '\t'):
		p.fail("dot-sourcing is not modelled")
	case isExprStart(c, p.peekAt(1)) || p.atNot():
		if !first {
			p.fail("an expression after | is not modelled")
		}
		e.expr = p.expression()
	case c == '{':
		p.fail("script blocks are not modelled")
	default:
		e.name = p.bareword()
		if e.name == "" {
			p.fail("unexpected %q", string(c))
		}
		e.args = p.args()
	}
	e.source = strings.TrimSpace(string(p.src[start:p.pos]))
	return e
}

// bareword reads a command name or an argument-mode bareword.
func (p *psParser) bareword() string {
	start := p.pos
	for !p.eof() {
		c := p.peek()
		if unicode.IsSpace(c) || strings.ContainsRune(";|(){},'\"", c) || c == '>' || c == '<' {
			break
		}
		if c == '`' {
			p.fail("escapes in barewords are not modelled")
		}
		p.pos++
	}
	return string(p.src[start:p.pos])
}

func (p *psParser) args() []psArg {
	var out []psArg
	for {
		p.space(false)
		c := p.peek()
		if p.endOfStatement() || c == '|' || c == '>' || (c >= '1' && c <= '6' || c == '*') && p.peekAt(1) == '>' {
			return out
		}
		start := p.pos
		if c == '-' && (unicode.IsLetter(p.peekAt(1)) || p.peekAt(1) == '-') {
			if p.peekAt(1) == '-' {
				p.fail("--%% and -- are not modelled")
			}
			p.pos++
			for !p.eof() && (isNameRune(p.peek()) || p.peek() == '?') {
				p.pos++
			}
			name := string(p.src[start+1 : p.pos])
			a := psArg{param: name}
			if p.peek() == ':' {
				p.pos++
				a.value = p.argValue()
			} else if !p.eof() && !unicode.IsSpace(p.peek()) && !strings.ContainsRune(";|)}", p.peek()) {
				// e.g. -F:* or /PackagePath-like text glued to the dash
				for !p.eof() && !unicode.IsSpace(p.peek()) && !strings.ContainsRune(";|)}", p.peek()) {
					p.pos++
				}
				a = psArg{value: &psLit{v: string(p.src[start:p.pos])}}
			}
			a.raw = string(p.src[start:p.pos])
			out = append(out, a)
			continue
		}
		v := p.argValue()
		if p.peek() == ',' {
			items := []psExpr{v}
			for p.peek() == ',' {
				p.pos++
				p.space(true)
				items = append(items, p.argValue())
			}
			v = &psArray{items: items}
		}
		out = append(out, psArg{value: v, raw: string(p.src[start:p.pos])})
	}
}

// argValue is one argument in argument mode.
func (p *psParser) argValue() psExpr {
	c := p.peek()
	var v psExpr
	switch {
	case c == '\'' || c == '"' || c == '$' || c == '(' || c == '@' && (p.peekAt(1) == '(' || p.peekAt(1) == '"' || p.peekAt(1) == '\''):
		v = p.postfix(p.primary())
	default:
		w := p.bareword()
		if w == "" {
			p.fail("unexpected %q in the arguments", string(c))
		}
		if n, err := strconv.ParseInt(w, 10, 64); err == nil {
			v = &psLit{v: n}
		} else if strings.Contains(w, "$") {
			v = p.expandText(w)
		} else {
			v = &psLit{v: w}
		}
	}
	if !p.eof() && !unicode.IsSpace(p.peek()) && !strings.ContainsRune(";|)},>", p.peek()) {
		p.fail("an argument glued to %q is not modelled", string(p.peek()))
	}
	return v
}
