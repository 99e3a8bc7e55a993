package winsim

import (
	"errors"
	"io"
	"io/fs"
	"strings"
)

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

// openRedirections opens the files of a command's redirections and returns
// the writers its stdout and stderr go to. The closers are to be closed
// whatever the outcome; failed is set when a redirection cannot be made.
func (m *Machine) openRedirections(p *proc, text string, redirs []redirection) (stdout, stderr io.Writer, closers []io.Closer, failed *cmdResult) {
	fail := func(code uint32) (io.Writer, io.Writer, []io.Closer, *cmdResult) {
		return nil, nil, closers, &cmdResult{errorlevel: code}
	}
	stdout, stderr = p.stdout, p.stderr
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
	return stdout, stderr, closers, nil
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
