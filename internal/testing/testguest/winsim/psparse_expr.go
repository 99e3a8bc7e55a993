package winsim

import (
	"strconv"
	"strings"
	"unicode"
)

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
