package winsim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// cmdCall is one run of a cmd.exe built-in: its arguments, where its output
// goes and the errorlevel it found.
type cmdCall struct {
	m              *Machine
	p              *proc
	args           string
	stdout, stderr io.Writer
	errorlevel     uint32
}

func (c *cmdCall) out(s string)    { _, _ = c.stdout.Write(c.p.encode(s)) }
func (c *cmdCall) errOut(s string) { _, _ = c.stderr.Write(c.p.encode(s)) }

// done is a built-in's success: the errorlevel stays as it was.
func (c *cmdCall) done() cmdResult { return cmdResult{ok: true, errorlevel: c.errorlevel} }

func (c *cmdCall) fail(code uint32) cmdResult { return cmdResult{errorlevel: code} }

// syntaxError is cmd's answer to arguments it cannot parse.
func (c *cmdCall) syntaxError() cmdResult {
	c.errOut("The syntax of the command is incorrect.\r\n")
	return c.fail(1)
}

// cmdBuiltins are the built-ins of cmd.exe the stand-in models, by name.
var cmdBuiltins = map[string]func(*cmdCall) cmdResult{
	"rem":   (*cmdCall).done,
	"cls":   (*cmdCall).done,
	"ver":   (*cmdCall).ver,
	"exit":  (*cmdCall).exit,
	"set":   (*cmdCall).set,
	"type":  (*cmdCall).typeFile,
	"del":   (*cmdCall).del,
	"erase": (*cmdCall).del,
	"mkdir": (*cmdCall).mkdir,
	"md":    (*cmdCall).mkdir,
	"rmdir": (*cmdCall).rmdir,
	"rd":    (*cmdCall).rmdir,
	"cd":    (*cmdCall).cd,
	"chdir": (*cmdCall).cd,
}

// cmdUnmodelled are cmd.exe's other built-ins: refused, not run as programs.
var cmdUnmodelled = map[string]bool{
	"if": true, "for": true, "goto": true, "call": true, "start": true, "pushd": true, "popd": true,
	"setlocal": true, "endlocal": true, "copy": true, "move": true, "ren": true, "rename": true,
	"dir": true, "pause": true, "title": true, "color": true, "assoc": true, "ftype": true,
	"path": true, "prompt": true, "verify": true, "vol": true, "date": true, "time": true,
	"mklink": true, "shift": true, "break": true,
}

// isEcho tells `echo` apart from a program whose name starts with "echo":
// echo's argument may follow a blank or one of these characters.
func isEcho(text string) bool {
	return strings.HasPrefix(strings.ToLower(text), "echo") && (len(text) == 4 || strings.ContainsRune(" \t.,;=(/:+[]\\", rune(text[4])))
}

// echo prints its argument; `echo` alone reports the echo state, `echo
// on|off` sets it.
func (c *cmdCall) echo(text string) cmdResult {
	arg := ""
	if len(text) > 4 {
		arg = text[5:]
	}
	switch t := strings.ToLower(strings.TrimSpace(arg)); {
	case len(text) > 4 && text[4] != ' ' && text[4] != '\t':
		c.out(arg + "\r\n")
	case t == "":
		c.out("ECHO is on.\r\n")
	case t == "on" || t == "off":
	default:
		c.out(arg + "\r\n")
	}
	return c.done()
}

func (c *cmdCall) ver() cmdResult {
	c.out(fmt.Sprintf("\r\nMicrosoft Windows [Version %s]\r\n", c.m.WindowsVersion().Version()))
	return c.done()
}

// exit [/b] [code] ends cmd with the code, or the errorlevel without one.
func (c *cmdCall) exit() cmdResult {
	f := strings.Fields(c.args)
	if len(f) > 0 && strings.EqualFold(f[0], "/b") {
		f = f[1:]
	}
	code := c.errorlevel
	if len(f) > 0 {
		n, err := strconv.ParseInt(f[0], 0, 64)
		if err != nil {
			n = 0
		}
		code = uint32(int32(n))
	}
	return cmdResult{ok: true, exit: true, errorlevel: code}
}

// set is cmd's `set`: list, list by prefix, assign, or unset.
func (c *cmdCall) set() cmdResult {
	a := strings.TrimSpace(c.args)
	if strings.HasPrefix(a, "/") {
		c.m.unsupportedf("cmd.exe set %q", a)
		return c.syntaxError()
	}
	if strings.HasPrefix(a, `"`) {
		if end := strings.LastIndexByte(a, '"'); end > 0 {
			a = a[1:end]
		}
	}
	if i := strings.IndexByte(a, '='); i > 0 {
		name, value := a[:i], a[i+1:]
		if value == "" {
			c.p.env.unset(name)
		} else {
			c.p.env.set(name, value)
		}
		return c.done()
	} else if i == 0 {
		return c.syntaxError()
	}
	found := false
	for _, v := range c.p.env.sorted() {
		if a == "" || strings.HasPrefix(strings.ToUpper(v.Name), strings.ToUpper(a)) {
			c.out(v.Name + "=" + v.Value + "\r\n")
			found = true
		}
	}
	if !found {
		c.errOut("Environment variable " + a + " not defined\r\n")
		return c.fail(1)
	}
	return c.done()
}

// typeFile is `type`: one file's bytes, unconverted, to stdout.
func (c *cmdCall) typeFile() cmdResult {
	files := splitArgs(c.args)
	if len(files) != 1 {
		c.m.unsupportedf("cmd.exe type with %d files: %q", len(files), c.args)
		return c.syntaxError()
	}
	data, err := c.p.files.ReadFile(files[0])
	if err != nil {
		c.errOut(winErrText(err) + "\r\n")
		return c.fail(1)
	}
	_, _ = c.stdout.Write(data)
	return c.done()
}

// del deletes files; wildcards and switches other than /f and /q are
// refused.
func (c *cmdCall) del() cmdResult {
	var files []string
	for _, a := range splitArgs(c.args) {
		switch strings.ToLower(a) {
		case "/f", "/q":
		default:
			if strings.HasPrefix(a, "/") || strings.ContainsAny(a, "*?") {
				c.m.unsupportedf("cmd.exe del %q", a)
				return c.syntaxError()
			}
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		return c.syntaxError()
	}
	for _, f := range files {
		abs, err := c.p.files.Abs(f)
		if err != nil {
			c.errOut(winErrText(err) + "\r\n")
			continue
		}
		if ok, dir := c.p.files.exists(f); !ok {
			c.errOut("Could Not Find " + abs + "\r\n")
		} else if dir {
			c.m.unsupportedf("cmd.exe del of the directory %s (deletes its files after a prompt)", abs)
			return c.fail(1)
		} else if err := c.p.files.Remove(f); err != nil {
			c.errOut(winErrText(err) + "\r\n")
		}
	}
	// del leaves the errorlevel alone, even when nothing was found.
	return c.done()
}

func (c *cmdCall) mkdir() cmdResult {
	dirs := splitArgs(c.args)
	if len(dirs) == 0 {
		return c.syntaxError()
	}
	res := c.done()
	for _, d := range dirs {
		if ok, _ := c.p.files.exists(d); ok {
			c.errOut("A subdirectory or file " + d + " already exists.\r\n")
			res = c.fail(1)
			continue
		}
		if err := c.p.files.MkdirAll(d); err != nil {
			c.errOut(winErrText(err) + "\r\n")
			res = c.fail(1)
		}
	}
	return res
}

// rmdir [/s] [/q] removes directories, with /s their contents too.
func (c *cmdCall) rmdir() cmdResult {
	recursive := false
	var dirs []string
	for _, a := range splitArgs(c.args) {
		switch strings.ToLower(a) {
		case "/s":
			recursive = true
		case "/q":
		default:
			dirs = append(dirs, a)
		}
	}
	res := c.done()
	for _, d := range dirs {
		ok, dir := c.p.files.exists(d)
		switch {
		case !ok:
			c.errOut("The system cannot find the file specified.\r\n")
			res = c.fail(2)
		case !dir:
			c.errOut("The directory name is invalid.\r\n")
			res = c.fail(267)
		case recursive:
			if err := c.p.files.RemoveAll(d); err != nil {
				c.errOut(winErrText(err) + "\r\n")
				res = c.fail(1)
			}
		default:
			if err := c.p.files.Remove(d); err != nil {
				c.errOut(winErrText(err) + "\r\n")
				res = c.fail(145)
			}
		}
	}
	return res
}

// cd [/d] [dir] prints or changes the working directory.
func (c *cmdCall) cd() cmdResult {
	a := strings.TrimSpace(c.args)
	if strings.HasPrefix(strings.ToLower(a), "/d") {
		a = strings.TrimSpace(a[2:])
	}
	a = strings.Trim(a, `"`)
	if a == "" {
		c.out(c.p.cwd() + "\r\n")
		return c.done()
	}
	if ok, dir := c.p.files.exists(a); !ok || !dir {
		c.errOut("The system cannot find the path specified.\r\n")
		return c.fail(1)
	}
	abs, _ := c.p.files.Abs(a)
	c.p.files = c.p.files.withCwd(abs)
	return c.done()
}
