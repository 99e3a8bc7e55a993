package winsim

import "strings"

// splitArgs splits a command line into arguments the way
// CommandLineToArgvW and the Microsoft C runtime do: whitespace separates
// arguments outside quotes, `"` toggles quoting, 2n backslashes before a
// quote give n backslashes and a quote delimiter, 2n+1 give n backslashes
// and a literal quote, backslashes elsewhere are literal, and `""` inside a
// quoted span is a literal quote (the post-2008 runtime rule).
func splitArgs(s string) []string {
	var args []string
	var cur strings.Builder
	inArg, inQuote := false, false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case (c == ' ' || c == '\t') && !inQuote:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
			i++
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			inArg = true
			if i < len(s) && s[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
					i++
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
			}
		case c == '"':
			inArg = true
			if inQuote && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteByte('"')
				i += 2
				continue
			}
			inQuote = !inQuote
			i++
		default:
			inArg = true
			cur.WriteByte(c)
			i++
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// splitProgram splits a command line into the program name, parsed the
// way CreateProcess does (quotes delimit, no escapes), and the rest of the
// line after the separating whitespace.
func splitProgram(s string) (prog, rest string) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return s[1:], ""
		}
		prog = s[1 : 1+end]
		rest = s[2+end:]
	} else {
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			return s, ""
		}
		prog, rest = s[:end], s[end:]
	}
	if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	return prog, rest
}

// escapeArg quotes an argument so that splitArgs gives it back, as Go's
// syscall.EscapeArg does for Windows.
func escapeArg(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// joinArgs builds the command line a Windows program receives for args.
func joinArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = escapeArg(a)
	}
	return strings.Join(q, " ")
}
