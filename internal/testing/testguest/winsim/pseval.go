package winsim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// pipeline runs a pipeline and returns its output objects. Native
// commands whose output is not consumed write straight to stdout.
func (rt *psRuntime) pipeline(pl *psPipeline) ([]any, error) {
	discardOut, discardErr, mergeErr := false, false, false
	for _, r := range pl.redirs {
		switch {
		case r.target == "&1" && r.stream == "2":
			mergeErr = true
		case r.target == "&1":
			return nil, &psUnsupported{msg: fmt.Sprintf("redirection %s>&1", r.stream), at: pl.at}
		case r.stream == "1":
			discardOut = true
		case r.stream == "2":
			discardErr = true
		case r.stream == "*":
			discardOut, discardErr = true, true
		default:
			return nil, &psUnsupported{msg: fmt.Sprintf("redirection of stream %s", r.stream), at: pl.at}
		}
	}
	elems := pl.elems
	// Trailing Out-Null consumes everything.
	if last := elems[len(elems)-1]; len(elems) > 1 && strings.EqualFold(last.name, "Out-Null") && len(last.args) == 0 {
		discardOut = true
		elems = elems[:len(elems)-1]
	}
	if len(elems) > 1 {
		return nil, &psUnsupported{msg: fmt.Sprintf("the pipeline into %q", elems[1].name), at: elems[1].at, name: elems[1].name}
	}
	e := elems[0]
	opts := invokeOpts{capture: discardOut || rt.sink != nil, discardErr: discardErr, mergeErr: mergeErr}
	out, err := rt.invoke(e, opts)
	if discardOut {
		return nil, err
	}
	return out, err
}

type invokeOpts struct {
	capture    bool // the output is consumed, not written to the host
	discardErr bool
	mergeErr   bool
}

// invoke runs one pipeline element.
func (rt *psRuntime) invoke(e *psElem, o invokeOpts) ([]any, error) {
	if e.expr != nil {
		v, err := rt.eval(e.expr, e)
		if err != nil {
			return nil, err
		}
		rt.lastOK = true
		return []any{v}, nil
	}
	name := e.name
	if e.call != nil {
		v, err := rt.eval(e.call, e)
		if err != nil {
			return nil, err
		}
		name = toString(v)
	}
	if cmdlet := psCmdlets[strings.ToLower(name)]; cmdlet != nil && e.call == nil {
		call, err := rt.bind(e, name, cmdlet, o)
		if err != nil {
			return nil, err
		}
		call.lastOK = true
		out, err := cmdlet.run(call)
		if err == nil {
			rt.lastOK = call.lastOK
		}
		return out, err
	}
	return rt.native(e, name, o)
}

// native runs a program the way Windows PowerShell 5.1 does: arguments
// with blanks are quoted, empty ones dropped; output consumed by the
// script is read back as lines.
func (rt *psRuntime) native(e *psElem, name string, o invokeOpts) ([]any, error) {
	pp := *rt.p
	pp.files = rt.files()
	abs := pp.findProgram(name, searchPath)
	if abs == "" || rt.m.programAt(abs) == nil {
		msg := fmt.Sprintf("PowerShell command %q is not a modelled cmdlet or program", name)
		if abs != "" {
			msg = fmt.Sprintf("PowerShell runs %s, a program the stand-in cannot run", abs)
		}
		return nil, &psUnsupported{msg: msg, name: name, at: e.at}
	}
	var parts []string
	for _, a := range e.args {
		var s string
		if a.param != "" && a.value == nil {
			s = a.raw
		} else if a.param != "" {
			s = a.raw
			if strings.Contains(s, "$") || strings.Contains(s, "(") {
				return nil, &psUnsupported{msg: fmt.Sprintf("native argument %q", a.raw), at: e.at}
			}
		} else {
			v, err := rt.eval(a.value, e)
			if err != nil {
				return nil, err
			}
			for _, x := range flatten([]any{v}) {
				s := toString(x)
				if s == "" {
					continue
				}
				if strings.ContainsAny(s, " \t") && !(strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`)) {
					s = `"` + s + `"`
				}
				parts = append(parts, s)
			}
			continue
		}
		parts = append(parts, s)
	}
	var outBuf bytes.Buffer
	stdout, stderr := rt.p.stdout, rt.p.stderr
	if o.capture {
		stdout = &outBuf
	}
	if o.discardErr {
		stderr = io.Discard
	}
	if o.mergeErr {
		stderr = stdout
	}
	c := rt.p.child(stdout, stderr)
	c.files = rt.p.files.withCwd(rt.cwd)
	code, _ := c.exec(abs, strings.Join(parts, " "))
	n := int64(int32(code))
	rt.lastExit = &n
	rt.lastOK = code == 0
	if !o.capture {
		return nil, nil
	}
	var out []any
	text := strings.ReplaceAll(outBuf.String(), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	if text != "" || outBuf.Len() > 0 {
		for _, l := range strings.Split(text, "\n") {
			out = append(out, l)
		}
	}
	return out, nil
}

// eval evaluates an expression; e is the element it belongs to (for
// error positions).
func (rt *psRuntime) eval(x psExpr, e *psElem) (any, error) {
	switch x := x.(type) {
	case *psLit:
		return x.v, nil
	case *psExpand:
		var b strings.Builder
		for _, part := range x.parts {
			switch {
			case part.isV:
				v, err := rt.getVar(part.varN, e.at)
				if err != nil {
					return nil, err
				}
				b.WriteString(toString(v))
			case part.isS:
				out, err := rt.capture(func() error { return rt.exec(part.sub) })
				if err != nil {
					return nil, err
				}
				b.WriteString(toString(unwrap(out, false)))
			default:
				b.WriteString(part.lit)
			}
		}
		return b.String(), nil
	case *psVar:
		return rt.getVar(x.name, e.at)
	case *psParen:
		out, err := rt.capture(func() error {
			vals, err := rt.pipeline(x.pipe)
			rt.emit(vals)
			return err
		})
		return unwrap(out, false), err
	case *psSubExpr:
		out, err := rt.capture(func() error { return rt.exec(x.stmts) })
		return unwrap(out, x.array), err
	case *psArray:
		var out []any
		for _, it := range x.items {
			v, err := rt.eval(it, e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *psUnary:
		v, err := rt.eval(x.x, e)
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case *psBinary:
		return rt.binary(x, e)
	case *psMember:
		return rt.member(x, e)
	case *psStatic:
		return rt.static(x, e)
	}
	return nil, &psUnsupported{msg: fmt.Sprintf("expression %T", x), at: e.at}
}

func (rt *psRuntime) binary(x *psBinary, e *psElem) (any, error) {
	l, err := rt.eval(x.l, e)
	if err != nil {
		return nil, err
	}
	if x.op == "-and" && !truthy(l) {
		return false, nil
	}
	if x.op == "-or" && truthy(l) {
		return true, nil
	}
	r, err := rt.eval(x.r, e)
	if err != nil {
		return nil, err
	}
	if x.op == "-contains" || x.op == "-notcontains" {
		// The left side is a collection (a scalar is a collection of one);
		// an item matches as -eq matches it (about_Comparison_Operators).
		items, isArr := l.([]any)
		if !isArr {
			items = []any{l}
		}
		found := false
		for _, item := range items {
			if o, ok := r.(psStructured); ok {
				return nil, &psUnsupported{msg: fmt.Sprintf("%s with a %s operand", x.op, o.typeName()), at: e.at}
			}
			if psEqual(item, r) {
				found = true
				break
			}
		}
		return found == (x.op == "-contains"), nil
	}
	if _, isArr := l.([]any); isArr && x.op != "-f" && x.op != "+" {
		return nil, &psUnsupported{msg: fmt.Sprintf("%s with an array on the left", x.op), at: e.at}
	}
	for _, operand := range []any{l, r} {
		if o, ok := operand.(psStructured); ok && x.op != "-and" && x.op != "-or" && x.op != "-xor" && x.op != "-f" {
			// PowerShell compares a Version as a Version, converting the
			// other side; comparing its text would answer 5.1 > 10.0.
			return nil, &psUnsupported{msg: fmt.Sprintf("%s with a %s operand", x.op, o.typeName()), at: e.at}
		}
	}
	switch x.op {
	case "-and", "-or":
		return truthy(r), nil
	case "-xor":
		return truthy(l) != truthy(r), nil
	case "-f":
		return rt.format(toString(l), flatten([]any{r}), e)
	case "-eq", "-ne":
		eq := psEqual(l, r)
		return eq == (x.op == "-eq"), nil
	case "-like", "-notlike":
		ok, _ := path.Match(strings.ToLower(toString(r)), strings.ToLower(toString(l)))
		return ok == (x.op == "-like"), nil
	case "-gt", "-ge", "-lt", "-le":
		c := psCompare(l, r)
		switch x.op {
		case "-gt":
			return c > 0, nil
		case "-ge":
			return c >= 0, nil
		case "-lt":
			return c < 0, nil
		}
		return c <= 0, nil
	case "+":
		switch lv := l.(type) {
		case string:
			return lv + toString(r), nil
		case int64:
			n, ok := toInt(r)
			if !ok {
				return nil, rt.statementError(e, fmt.Sprintf("Cannot convert value \"%s\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\"", toString(r)), "InvalidArgument", "RuntimeException", "InvalidCastFromStringToInteger")
			}
			return lv + n, nil
		case []any:
			return append(append([]any{}, lv...), flatten([]any{r})...), nil
		case nil:
			return r, nil
		}
	case "-":
		a, ok1 := toInt(l)
		b, ok2 := toInt(r)
		if ok1 && ok2 {
			return a - b, nil
		}
	}
	return nil, &psUnsupported{msg: fmt.Sprintf("operator %s on %T and %T", x.op, l, r), at: e.at}
}

func psEqual(l, r any) bool {
	switch lv := l.(type) {
	case nil:
		return r == nil
	case string:
		return r != nil && strings.EqualFold(lv, toString(r))
	case int64:
		n, ok := toInt(r)
		return ok && r != nil && n == lv
	case bool:
		return r != nil && lv == truthy(r)
	}
	return l == r
}

func psCompare(l, r any) int {
	if a, ok := l.(int64); ok {
		if b, ok := toInt(r); ok {
			switch {
			case a < b:
				return -1
			case a > b:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(strings.ToLower(toString(l)), strings.ToLower(toString(r)))
}

// format is .NET composite formatting ({0}, {1}, {{, }}).
func (rt *psRuntime) format(f string, args []any, e *psElem) (any, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '{' && i+1 < len(f) && f[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, rt.statementError(e, "Error formatting a string: Input string was not in a correct format..", "InvalidOperation", "RuntimeException", "FormatError")
			}
			spec := f[i+1 : i+end]
			n, err := strconv.Atoi(spec)
			if err != nil {
				return nil, &psUnsupported{msg: fmt.Sprintf("format item {%s}", spec), at: e.at}
			}
			if n >= len(args) {
				return nil, rt.statementError(e, "Error formatting a string: Index (zero based) must be greater than or equal to zero and less than the size of the argument list..", "InvalidOperation", "RuntimeException", "FormatError")
			}
			b.WriteString(toString(args[n]))
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func (rt *psRuntime) statementError(e *psElem, msg, category, exception, fqid string) error {
	return &psStatementError{rec: &psErrorRecord{message: msg, category: category, exception: exception, fqid: fqid, at: e.at, source: e.source}}
}

func (rt *psRuntime) methodError(e *psElem, method string, nargs int, msg, exception string) error {
	return &psStatementError{rec: &psErrorRecord{
		message:  fmt.Sprintf("Exception calling \"%s\" with \"%d\" argument(s): \"%s\"", method, nargs, msg),
		category: "NotSpecified", target: ":", exception: "MethodInvocationException", fqid: exception, at: e.at, source: e.source,
	}}
}

func (rt *psRuntime) member(x *psMember, e *psElem) (any, error) {
	t, err := rt.eval(x.target, e)
	if err != nil {
		return nil, err
	}
	var args []any
	for _, a := range x.args {
		v, err := rt.eval(a, e)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	name := strings.ToLower(x.name)
	if t == nil {
		if x.call {
			return nil, &psStatementError{rec: &psErrorRecord{message: "You cannot call a method on a null-valued expression.", category: "InvalidOperation", exception: "RuntimeException", fqid: "InvokeMethodOnNull", at: e.at, source: e.source}}
		}
		return nil, nil
	}
	unsupported := func() (any, error) {
		return nil, &psUnsupported{msg: fmt.Sprintf("member %s of %T", x.name, t), at: e.at}
	}
	if o, ok := t.(psStructured); ok && !x.call {
		if v, found := o.psProperty(name); found {
			return v, nil
		}
		return unsupported()
	}
	if v, ok := psObjectMember(t, name, x.call); ok {
		return v, nil
	}
	if x.call && name == "tostring" && len(args) == 0 {
		return toString(t), nil
	}
	switch v := t.(type) {
	case *psPathInfo:
		if !x.call && (name == "path" || name == "providerpath") {
			return v.path, nil
		}
	case *psFileItem:
		if !x.call {
			switch name {
			case "fullname":
				return toString(v), nil
			case "name":
				return v.name, nil
			case "length":
				return v.length, nil
			}
		}
	case []byte:
		if !x.call && (name == "length" || name == "count") {
			return int64(len(v)), nil
		}
	case []any:
		if !x.call && (name == "length" || name == "count") {
			return int64(len(v)), nil
		}
	case string:
		if !x.call {
			if name == "length" {
				return int64(len([]rune(v))), nil
			}
			return unsupported()
		}
		strArg := func(i int) string { return toString(args[i]) }
		switch {
		case (name == "trim" || name == "trimstart" || name == "trimend") && len(args) <= 1:
			cut := " \t\r\n\v\f"
			if len(args) == 1 {
				cut = strArg(0)
			}
			switch name {
			case "trim":
				return strings.Trim(v, cut), nil
			case "trimstart":
				return strings.TrimLeft(v, cut), nil
			}
			return strings.TrimRight(v, cut), nil
		case (name == "tolower" || name == "tolowerinvariant") && len(args) == 0:
			return strings.ToLower(v), nil
		case (name == "toupper" || name == "toupperinvariant") && len(args) == 0:
			return strings.ToUpper(v), nil
		case name == "replace" && len(args) == 2:
			return strings.ReplaceAll(v, strArg(0), strArg(1)), nil
		case name == "contains" && len(args) == 1:
			return strings.Contains(v, strArg(0)), nil
		case name == "startswith" && len(args) == 1:
			return strings.HasPrefix(v, strArg(0)), nil
		case name == "endswith" && len(args) == 1:
			return strings.HasSuffix(v, strArg(0)), nil
		}
	}
	return unsupported()
}

// static runs [Type]::Member.
func (rt *psRuntime) static(x *psStatic, e *psElem) (any, error) {
	var args []any
	for _, a := range x.args {
		v, err := rt.eval(a, e)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	typ := strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(x.typ, " ", "")), "system.")
	key := typ + "::" + strings.ToLower(x.name)
	str := func(i int) string { return toString(args[i]) }
	n := len(args)
	switch {
	case key == "net.dns::gethostname" && x.call && n == 0:
		return rt.m.ComputerName(), nil
	case key == "environment::machinename" && !x.call:
		return strings.ToUpper(rt.m.ComputerName()), nil
	case key == "io.path::getfullpath" && x.call && n == 1:
		wp, err := parseWinPath(str(0), rt.cwd)
		if err != nil || str(0) == "" {
			return nil, rt.methodError(e, x.name, n, "The path is not of a legal form.", "ArgumentException")
		}
		if r, err := rt.p.files.resolveWin(wp); err == nil {
			return r.win.String(), nil
		}
		return wp.String(), nil
	case key == "io.path::getdirectoryname" && x.call && n == 1:
		s := strings.ReplaceAll(str(0), "/", `\`)
		i := strings.LastIndexByte(s, '\\')
		if i < 0 {
			return "", nil
		}
		if i == 2 && s[1] == ':' {
			if len(s) == 3 {
				return nil, nil
			}
			return s[:3], nil
		}
		return s[:i], nil
	case key == "io.path::getfilename" && x.call && n == 1:
		s := strings.ReplaceAll(str(0), "/", `\`)
		return s[strings.LastIndexByte(s, '\\')+1:], nil
	case key == "io.path::combine" && x.call && n == 2:
		a, b := str(0), str(1)
		if strings.HasPrefix(b, `\`) || len(b) > 1 && b[1] == ':' || a == "" {
			return b, nil
		}
		return strings.TrimSuffix(a, `\`) + `\` + b, nil
	case key == "io.file::exists" && x.call && n == 1:
		ok, dir := rt.files().exists(str(0))
		return ok && !dir, nil
	case key == "io.directory::exists" && x.call && n == 1:
		ok, dir := rt.files().exists(str(0))
		return ok && dir, nil
	case key == "io.file::readallbytes" && x.call && n == 1:
		data, err := rt.files().ReadFile(str(0))
		if err != nil {
			return nil, rt.methodError(e, x.name, n, dotnetIOMessage(err, str(0)), "FileNotFoundException")
		}
		return data, nil
	case key == "convert::tobase64string" && x.call && n == 1:
		b, ok := args[0].([]byte)
		if !ok {
			return nil, &psUnsupported{msg: fmt.Sprintf("[Convert]::ToBase64String of %T", args[0]), at: e.at}
		}
		return base64.StdEncoding.EncodeToString(b), nil
	case key == "convert::frombase64string" && x.call && n == 1:
		b, err := fromBase64(str(0))
		if err != nil {
			return nil, rt.methodError(e, x.name, n, base64Invalid, "FormatException")
		}
		return b, nil
	}
	return nil, &psUnsupported{msg: fmt.Sprintf("[%s]::%s", x.typ, x.name), at: e.at}
}

const base64Invalid = "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters. "

// fromBase64 is Convert.FromBase64String: blanks are ignored.
func fromBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

func dotnetIOMessage(err error, p string) string {
	switch winErrText(err) {
	case ErrorFileNotFound.Error():
		return fmt.Sprintf("Could not find file '%s'.", p)
	case ErrorPathNotFound.Error():
		return fmt.Sprintf("Could not find a part of the path '%s'.", p)
	case ErrorAccessDenied.Error():
		return fmt.Sprintf("Access to the path '%s' is denied.", p)
	}
	return winErrText(err)
}

func (rt *psRuntime) files() *Files { return rt.p.files.withCwd(rt.cwd) }
