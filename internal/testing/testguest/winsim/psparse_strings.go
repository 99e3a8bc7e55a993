package winsim

import (
	"strings"
	"unicode"
)

// expandText parses a bareword holding variables as an expandable string.
func (p *psParser) expandText(w string) psExpr {
	sub := &psParser{src: []rune(`"` + strings.ReplaceAll(w, `"`, "`\"") + `"`)}
	return sub.primary()
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
