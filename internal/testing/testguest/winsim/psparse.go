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

type psPos struct {
	offset int
}

type psStmt interface{ pos() psPos }

type psPipeline struct {
	at    psPos
	elems []*psElem
	// redirections at the end of the pipeline
	redirs []psRedir
}

func (s *psPipeline) pos() psPos { return s.at }

type psRedir struct {
	stream string // "1", "2", "*"
	target string // "$null", "&1", or a file (unsupported)
}

type psAssign struct {
	at    psPos
	name  string // variable name, e.g. "x", "env:TEMP"
	value *psPipeline
}

func (s *psAssign) pos() psPos { return s.at }

type psIf struct {
	at      psPos
	conds   []*psPipeline
	bodies  [][]psStmt
	elseDo  []psStmt
	hasElse bool
}

func (s *psIf) pos() psPos { return s.at }

type psExitStmt struct {
	at    psPos
	value *psPipeline // nil: no value
}

func (s *psExitStmt) pos() psPos { return s.at }

type psThrowStmt struct {
	at    psPos
	value *psPipeline
}

func (s *psThrowStmt) pos() psPos { return s.at }

// psElem is one pipeline element: an expression (first element only) or a
// command invocation by name or with the call operator.
type psElem struct {
	at     psPos
	expr   psExpr // expression element
	name   string // command name
	call   psExpr // & <call>
	args   []psArg
	source string
}

type psArg struct {
	param string // parameter name without '-', "" for a positional argument
	value psExpr // nil for a switch parameter
	raw   string // the text as written (native commands get it verbatim)
}

type psExpr interface{}

type (
	psLit     struct{ v any }
	psStrPart struct {
		lit  string
		varN string   // variable reference
		sub  []psStmt // $( ... )
		isV  bool
		isS  bool
	}
	psExpand  struct{ parts []psStrPart }
	psVar     struct{ name string }
	psParen   struct{ pipe *psPipeline }
	psSubExpr struct {
		stmts []psStmt
		array bool
	}
	psMember struct {
		target psExpr
		name   string
		call   bool
		args   []psExpr
	}
	psStatic struct {
		typ  string
		name string
		call bool
		args []psExpr
	}
	psBinary struct {
		op   string
		l, r psExpr
	}
	psUnary struct {
		op string
		x  psExpr
	}
	psArray struct{ items []psExpr }
)

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

// expandText parses a bareword holding variables as an expandable string.
func (p *psParser) expandText(w string) psExpr {
	sub := &psParser{src: []rune(`"` + strings.ReplaceAll(w, `"`, "`\"") + `"`)}
	return sub.primary()
}

// expression parses with the precedence of PowerShell (low to high):
// -and -or; comparisons; + -; -f; -not !; the comma; postfix.
func (p *psParser) expression() psExpr { return p.logical() }

func (p *psParser) opAhead(ops ...string) string {
	save := p.pos
	p.space(p.depth > 0)
	for _, op := range ops {
		r := []rune(op)
		if p.pos+len(r) > len(p.src) || !strings.EqualFold(string(p.src[p.pos:p.pos+len(r)]), op) {
			continue
		}
		if op[0] == '-' && p.pos+len(r) < len(p.src) && isNameRune(p.src[p.pos+len(r)]) {
			continue
		}
		p.pos += len(r)
		p.space(true)
		return strings.ToLower(op)
	}
	p.pos = save
	return ""
}

func (p *psParser) logical() psExpr {
	l := p.comparison()
	for {
		op := p.opAhead("-and", "-or", "-xor")
		if op == "" {
			return l
		}
		l = &psBinary{op: op, l: l, r: p.comparison()}
	}
}

var psComparisonOps = []string{"-eq", "-ne", "-gt", "-ge", "-lt", "-le", "-like", "-notlike",
	"-ieq", "-ine", "-ceq", "-cne", "-ilike", "-inotlike", "-contains", "-notcontains"}

func (p *psParser) comparison() psExpr {
	l := p.additive()
	for {
		op := p.opAhead(psComparisonOps...)
		if op == "" {
			save := p.pos
			p.space(p.depth > 0)
			if p.peek() == '-' && unicode.IsLetter(p.peekAt(1)) {
				i := p.pos + 1
				for i < len(p.src) && unicode.IsLetter(p.src[i]) {
					i++
				}
				p.fail("the operator %q is not modelled", string(p.src[p.pos:i]))
			}
			p.pos = save
			return l
		}
		if op != "-contains" {
			op = strings.TrimPrefix(strings.TrimPrefix(op, "-i"), "-")
			op = "-" + strings.TrimPrefix(op, "c")
		}
		l = &psBinary{op: op, l: l, r: p.additive()}
	}
}

func (p *psParser) additive() psExpr {
	l := p.format()
	for {
		save := p.pos
		p.space(p.depth > 0)
		c := p.peek()
		if (c == '+' || c == '-') && !unicode.IsLetter(p.peekAt(1)) && p.peekAt(1) != '=' {
			p.pos++
			p.space(true)
			l = &psBinary{op: string(c), l: l, r: p.format()}
			continue
		}
		p.pos = save
		return l
	}
}

func (p *psParser) format() psExpr {
	l := p.unary()
	for {
		if p.opAhead("-f") == "" {
			return l
		}
		l = &psBinary{op: "-f", l: l, r: p.unary()}
	}
}

// atNot reports whether the -not operator starts here.
func (p *psParser) atNot() bool {
	return strings.EqualFold(string(p.src[p.pos:min(p.pos+4, len(p.src))]), "-not") && !isNameRune(p.peekAt(4))
}

func (p *psParser) unary() psExpr {
	if p.peek() == '!' {
		p.pos++
		p.space(false)
		return &psUnary{op: "-not", x: p.unary()}
	}
	if p.atNot() {
		p.pos += 4
		p.space(false)
		return &psUnary{op: "-not", x: p.unary()}
	}
	return p.comma()
}

func (p *psParser) comma() psExpr {
	first := p.postfix(p.primary())
	if p.peek() != ',' || p.noComma {
		return first
	}
	items := []psExpr{first}
	for p.peek() == ',' {
		p.pos++
		p.space(true)
		items = append(items, p.postfix(p.primary()))
	}
	return &psArray{items: items}
}

func (p *psParser) primary() psExpr {
	c := p.peek()
	switch {
	case c == '\'':
		return &psLit{v: p.verbatimString()}
	case c == '"':
		return p.expandableString()
	case c == '@' && (p.peekAt(1) == '"' || p.peekAt(1) == '\''):
		p.fail("here-strings are not modelled")
	case c == '$' && p.peekAt(1) == '(':
		p.pos += 2
		return &psSubExpr{stmts: p.inner(')')}
	case c == '@' && p.peekAt(1) == '(':
		p.pos += 2
		return &psSubExpr{stmts: p.inner(')'), array: true}
	case c == '$':
		return &psVar{name: p.variableName()}
	case c == '(':
		p.pos++
		p.depth++
		saveNC := p.noComma
		p.noComma = false
		defer func() { p.noComma = saveNC }()
		p.space(true)
		pl := p.pipeline()
		p.space(true)
		if p.peek() != ')' {
			p.fail("missing )")
		}
		p.pos++
		p.depth--
		return &psParen{pipe: pl}
	case c == '[':
		end := strings.IndexRune(string(p.src[p.pos:]), ']')
		if end < 0 {
			p.fail("missing ]")
		}
		typ := string(p.src[p.pos+1 : p.pos+end])
		p.pos += len([]rune(string(p.src[p.pos:])[:end])) + 1
		if p.peek() != ':' || p.peekAt(1) != ':' {
			p.fail("the type expression [%s] is not modelled (only [type]::Member)", typ)
		}
		p.pos += 2
		name := p.memberName()
		s := &psStatic{typ: typ, name: name}
		if p.peek() == '(' {
			s.call, s.args = true, p.callArgs()
		}
		return s
	case c >= '0' && c <= '9' || c == '-' && p.peekAt(1) >= '0' && p.peekAt(1) <= '9':
		start := p.pos
		p.pos++
		for !p.eof() && (unicode.IsDigit(p.peek()) || unicode.IsLetter(p.peek())) {
			p.pos++
		}
		text := string(p.src[start:p.pos])
		n, err := strconv.ParseInt(text, 0, 64)
		if err != nil {
			p.fail("the number %q is not modelled", text)
		}
		return &psLit{v: n}
	}
	p.fail("unexpected %q in an expression", string(c))
	return nil
}

// inner parses statements up to the closing rune and consumes it.
func (p *psParser) inner(end rune) []psStmt {
	depth, nc := p.depth, p.noComma
	p.depth, p.noComma = 1, false
	defer func() { p.noComma = nc }()
	stmts := p.statements(end)
	p.depth = depth
	if p.peek() != end {
		p.fail("missing %q", string(end))
	}
	p.pos++
	return stmts
}

func (p *psParser) memberName() string {
	start := p.pos
	for !p.eof() && (unicode.IsLetter(p.peek()) || unicode.IsDigit(p.peek()) || p.peek() == '_') {
		p.pos++
	}
	if start == p.pos {
		p.fail("missing member name")
	}
	return string(p.src[start:p.pos])
}

func (p *psParser) callArgs() []psExpr {
	p.pos++ // (
	p.depth++
	var args []psExpr
	p.space(true)
	for p.peek() != ')' {
		args = append(args, p.logicalNoComma())
		p.space(true)
		if p.peek() == ',' {
			p.pos++
			p.space(true)
			continue
		}
		if p.peek() != ')' {
			p.fail("missing ) of a method call")
		}
	}
	p.pos++
	p.depth--
	return args
}

// logicalNoComma parses a method argument, where the comma separates.
func (p *psParser) logicalNoComma() psExpr {
	save := p.noComma
	p.noComma = true
	defer func() { p.noComma = save }()
	return p.logical()
}

func (p *psParser) postfix(e psExpr) psExpr {
	for {
		c := p.peek()
		switch {
		case c == '.' && (unicode.IsLetter(p.peekAt(1)) || p.peekAt(1) == '_'):
			p.pos++
			m := &psMember{target: e, name: p.memberName()}
			if p.peek() == '(' {
				m.call, m.args = true, p.callArgs()
			}
			e = m
		case c == ':' && p.peekAt(1) == ':':
			p.fail("static members of values are not modelled")
		case c == '[':
			p.fail("indexing is not modelled")
		default:
			return e
		}
	}
}

func (p *psParser) verbatimString() string {
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			p.fail("missing closing ' of a string")
		}
		c := p.peek()
		p.pos++
		if c == '\'' || c == '\u2019' || c == '\u2018' {
			if p.peek() == '\'' {
				b.WriteRune('\'')
				p.pos++
				continue
			}
			return b.String()
		}
		b.WriteRune(c)
	}
}

func (p *psParser) expandableString() psExpr {
	p.pos++
	s := &psExpand{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			s.parts = append(s.parts, psStrPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for {
		if p.eof() {
			p.fail(`missing closing " of a string`)
		}
		c := p.peek()
		switch {
		case c == '"':
			p.pos++
			if p.peek() == '"' {
				lit.WriteRune('"')
				p.pos++
				continue
			}
			flush()
			return s
		case c == '`':
			p.pos++
			e := p.peek()
			p.pos++
			switch e {
			case 'n':
				lit.WriteRune('\n')
			case 'r':
				lit.WriteRune('\r')
			case 't':
				lit.WriteRune('\t')
			case '0':
				lit.WriteRune(0)
			case 'a':
				lit.WriteRune('\a')
			case 'b':
				lit.WriteRune('\b')
			case 'e':
				lit.WriteRune(0x1b)
			case 'f':
				lit.WriteRune('\f')
			case 'v':
				lit.WriteRune('\v')
			default:
				lit.WriteRune(e)
			}
		case c == '$' && p.peekAt(1) == '(':
			flush()
			p.pos += 2
			s.parts = append(s.parts, psStrPart{sub: p.inner(')'), isS: true})
		case c == '$' && (unicode.IsLetter(p.peekAt(1)) || p.peekAt(1) == '_' || p.peekAt(1) == '{' || p.peekAt(1) == '?'):
			flush()
			s.parts = append(s.parts, psStrPart{varN: p.variableName(), isV: true})
		default:
			lit.WriteRune(c)
			p.pos++
		}
	}
}

// variableName parses $name, $scope:name, ${name} or $? and returns the
// name without the $.
func (p *psParser) variableName() string {
	p.pos++ // $
	if p.peek() == '{' {
		end := strings.IndexRune(string(p.src[p.pos:]), '}')
		if end < 0 {
			p.fail("missing } of a variable name")
		}
		name := string(p.src[p.pos+1 : p.pos+end])
		p.pos += len([]rune(string(p.src[p.pos:])[:end])) + 1
		return name
	}
	if p.peek() == '?' {
		p.pos++
		return "?"
	}
	start := p.pos
	for !p.eof() && (unicode.IsLetter(p.peek()) || unicode.IsDigit(p.peek()) || p.peek() == '_') {
		p.pos++
	}
	if p.peek() == ':' && p.peekAt(1) != ':' && p.pos > start {
		scope := strings.ToLower(string(p.src[start:p.pos]))
		switch scope {
		case "env", "global", "script", "local", "private", "variable":
		default:
			p.fail("the variable scope %q is not modelled", scope)
		}
		p.pos++
		nstart := p.pos
		for !p.eof() && (unicode.IsLetter(p.peek()) || unicode.IsDigit(p.peek()) || p.peek() == '_') {
			p.pos++
		}
		if nstart == p.pos {
			p.fail("missing variable name after %s:", scope)
		}
	}
	if start == p.pos {
		p.fail("missing variable name")
	}
	return string(p.src[start:p.pos])
}
