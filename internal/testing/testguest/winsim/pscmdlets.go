package winsim

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

type psParam struct {
	name     string
	aliases  []string
	isSwitch bool
	position int // -1: named only
}

type psCmdlet struct {
	params []psParam
	// remaining binds extra positional arguments (ValueFromRemainingArguments).
	remaining bool
	// module: the command comes from an auto-loaded module.
	module bool
	run    func(c *psCall) ([]any, error)
}

// psCall is one cmdlet invocation with its bound parameters.
type psCall struct {
	rt          *psRuntime
	e           *psElem
	name        string
	named       map[string]any
	positional  []any
	errorAction string
	lastOK      bool
	opts        invokeOpts
}

func (c *psCall) has(name string) bool { _, ok := c.named[name]; return ok }

func (c *psCall) str(name string) string { return toString(c.named[name]) }

func (c *psCall) flag(name string) bool { v, ok := c.named[name]; return ok && truthy(v) }

// path is the -Path or -LiteralPath argument.
func (c *psCall) path() (p string, literal bool) {
	if c.has("literalpath") {
		return c.str("literalpath"), true
	}
	return c.str("path"), false
}

var commonParams = []psParam{
	{name: "erroraction", aliases: []string{"ea"}, position: -1},
	{name: "warningaction", aliases: []string{"wa"}, position: -1},
	{name: "informationaction", aliases: []string{"infa"}, position: -1},
	{name: "verbose", aliases: []string{"vb"}, isSwitch: true, position: -1},
	{name: "debug", aliases: []string{"db"}, isSwitch: true, position: -1},
}

// bind evaluates the arguments and binds them to the cmdlet's parameters
// (names match case-insensitively, by alias or unambiguous prefix).
func (rt *psRuntime) bind(e *psElem, name string, cmd *psCmdlet, o invokeOpts) (*psCall, error) {
	c := &psCall{rt: rt, e: e, name: name, named: map[string]any{}, opts: o}
	all := append(append([]psParam{}, cmd.params...), commonParams...)
	find := func(n string) (*psParam, error) {
		n = strings.ToLower(n)
		var match *psParam
		for i := range all {
			p := &all[i]
			if p.name == n {
				return p, nil
			}
			for _, a := range p.aliases {
				if a == n {
					return p, nil
				}
			}
			if strings.HasPrefix(p.name, n) {
				if match != nil {
					return nil, &psUnsupported{msg: fmt.Sprintf("%s: parameter -%s is ambiguous", name, n), at: e.at}
				}
				match = p
			}
		}
		if match == nil {
			return nil, &psUnsupported{msg: fmt.Sprintf("%s: parameter -%s is not modelled (\"A parameter cannot be found that matches parameter name '%s'.\")", name, n, n), at: e.at, name: name}
		}
		return match, nil
	}
	var pos []any
	for i := 0; i < len(e.args); i++ {
		a := e.args[i]
		if a.param == "" {
			v, err := rt.eval(a.value, e)
			if err != nil {
				return nil, err
			}
			pos = append(pos, v)
			continue
		}
		p, err := find(a.param)
		if err != nil {
			return nil, err
		}
		var v any = true
		switch {
		case a.value != nil:
			if v, err = rt.eval(a.value, e); err != nil {
				return nil, err
			}
		case p.isSwitch:
		case i+1 < len(e.args) && e.args[i+1].param == "":
			i++
			if v, err = rt.eval(e.args[i].value, e); err != nil {
				return nil, err
			}
		default:
			return nil, &psStatementError{rec: &psErrorRecord{message: fmt.Sprintf("Missing an argument for parameter '%s'. Specify a parameter of type 'System.String' and try again.", p.name),
				activity: name, category: "InvalidArgument", target: ":", exception: "ParameterBindingException", fqid: "MissingArgument", at: e.at, source: e.source}}
		}
		c.named[p.name] = v
	}
	next := 0
	for _, v := range pos {
		bound := false
		for ; next < len(cmd.params)+1; next++ {
			var p *psParam
			for i := range cmd.params {
				if cmd.params[i].position == next {
					p = &cmd.params[i]
				}
			}
			if p == nil {
				break
			}
			if _, taken := c.named[p.name]; taken {
				continue
			}
			c.named[p.name] = v
			bound = true
			next++
			break
		}
		if !bound {
			if !cmd.remaining {
				return nil, &psUnsupported{msg: fmt.Sprintf("%s: positional argument %q is not modelled", name, toString(v)), at: e.at, name: name}
			}
			c.positional = append(c.positional, v)
		}
	}
	c.errorAction = toString(rt.vars["erroractionpreference"])
	if c.has("erroraction") {
		c.errorAction = c.str("erroraction")
	}
	if cmd.module {
		rt.moduleCommand()
	}
	return c, nil
}

// nonTerminating reports a cmdlet's error per -ErrorAction.
func (c *psCall) nonTerminating(rec *psErrorRecord) error {
	c.lastOK = false
	if rec.activity == "" {
		rec.activity = c.name
	}
	rec.at, rec.source = c.e.at, c.e.source
	switch strings.ToLower(c.errorAction) {
	case "silentlycontinue", "ignore":
		return nil
	case "stop":
		return &psStop{rec: rec}
	}
	if c.opts.discardErr {
		return nil
	}
	c.rt.writeError(rec)
	return nil
}

func (c *psCall) pathNotFound(p, cmdlet string) error {
	return c.nonTerminating(&psErrorRecord{
		message: fmt.Sprintf("Cannot find path '%s' because it does not exist.", p), category: "ObjectNotFound",
		target: p, exception: "ItemNotFoundException", fqid: "PathNotFound,Microsoft.PowerShell.Commands." + cmdlet,
	})
}

// remaining values of Write-Host / Write-Output: the first positional
// parameter plus the rest.
func (c *psCall) values(param string) []any {
	var vals []any
	if v, ok := c.named[param]; ok {
		vals = append(vals, v)
	}
	return append(vals, c.positional...)
}

var psCmdlets map[string]*psCmdlet

func init() {
	writeHost := &psCmdlet{
		params: []psParam{
			{name: "object", aliases: []string{"msg", "message"}, position: 0},
			{name: "nonewline", isSwitch: true, position: -1},
			{name: "separator", position: -1},
			{name: "foregroundcolor", aliases: []string{"fg"}, position: -1},
			{name: "backgroundcolor", aliases: []string{"bg"}, position: -1},
		},
		remaining: true,
		run: func(c *psCall) ([]any, error) {
			sep := " "
			if c.has("separator") {
				sep = c.str("separator")
			}
			var parts []string
			for _, v := range flatten(c.values("object")) {
				parts = append(parts, toString(v))
			}
			p := c.rt.p
			p.print(p.stdout, strings.Join(parts, sep))
			if !c.flag("nonewline") {
				p.print(p.stdout, "\n")
			}
			return nil, nil
		},
	}
	writeOutput := &psCmdlet{
		params:    []psParam{{name: "inputobject", position: 0}, {name: "noenumerate", isSwitch: true, position: -1}},
		remaining: true,
		run:       func(c *psCall) ([]any, error) { return c.values("inputobject"), nil },
	}
	writeError := &psCmdlet{
		params: []psParam{{name: "message", aliases: []string{"msg"}, position: 0}},
		run: func(c *psCall) ([]any, error) {
			msg := c.str("message")
			return nil, c.nonTerminating(&psErrorRecord{message: msg, category: "NotSpecified", target: ":", exception: "WriteErrorException", fqid: "Microsoft.PowerShell.Commands.WriteErrorException"})
		},
	}
	startSleep := &psCmdlet{
		params: []psParam{{name: "seconds", aliases: []string{"s"}, position: 0}, {name: "milliseconds", aliases: []string{"m"}, position: -1}},
		run: func(c *psCall) ([]any, error) {
			var d time.Duration
			if c.has("milliseconds") {
				n, _ := toInt(c.named["milliseconds"])
				d = time.Duration(n) * time.Millisecond
			} else {
				n, ok := toInt(c.named["seconds"])
				if !ok {
					return nil, &psUnsupported{msg: fmt.Sprintf("Start-Sleep %v", c.named["seconds"]), at: c.e.at}
				}
				d = time.Duration(n) * time.Second
			}
			if err := sleep(c.rt.p.ctx, c.rt.m.clock, d); err != nil {
				return nil, &psExit{code: ExitTerminated}
			}
			return nil, nil
		},
	}
	testPath := &psCmdlet{
		params: []psParam{
			{name: "path", position: 0},
			{name: "literalpath", aliases: []string{"pspath", "lp"}, position: -1},
			{name: "pathtype", aliases: []string{"type"}, position: -1},
		},
		module: true,
		run: func(c *psCall) ([]any, error) {
			p, literal := c.path()
			if p == "" {
				return nil, &psStatementError{rec: &psErrorRecord{message: "Cannot bind argument to parameter 'Path' because it is an empty string.", activity: c.name,
					category: "InvalidData", target: ":", exception: "ParameterBindingValidationException", fqid: "ParameterArgumentValidationErrorEmptyStringNotAllowed,Microsoft.PowerShell.Commands.TestPathCommand", at: c.e.at, source: c.e.source}}
			}
			if !literal && strings.ContainsAny(p, "*?[") {
				return nil, &psUnsupported{msg: fmt.Sprintf("Test-Path with wildcards %q", p), at: c.e.at}
			}
			typ := strings.ToLower(c.str("pathtype"))
			if typ != "" && typ != "any" && typ != "leaf" && typ != "container" {
				return nil, &psUnsupported{msg: fmt.Sprintf("Test-Path -PathType %s", typ), at: c.e.at}
			}
			ok, leaf, err := c.rt.itemExists(p, c.e)
			if err != nil {
				return nil, err
			}
			switch typ {
			case "leaf":
				ok = ok && leaf
			case "container":
				ok = ok && !leaf
			}
			return []any{ok}, nil
		},
	}
	getLocation := &psCmdlet{run: func(c *psCall) ([]any, error) { return []any{&psPathInfo{path: c.rt.cwd}}, nil }}
	setLocation := &psCmdlet{
		params: []psParam{{name: "path", position: 0}, {name: "literalpath", aliases: []string{"pspath", "lp"}, position: -1}},
		module: true,
		run: func(c *psCall) ([]any, error) {
			p, _ := c.path()
			fp, err := c.rt.fsPath(p, c.e)
			if err != nil {
				return nil, err
			}
			f := c.rt.files()
			if ok, dir := f.exists(fp); !ok || !dir {
				return nil, c.pathNotFound(p, "SetLocationCommand")
			}
			c.rt.cwd, _ = f.Abs(fp)
			return nil, nil
		},
	}
	removeItem := &psCmdlet{
		params: []psParam{
			{name: "path", position: 0},
			{name: "literalpath", aliases: []string{"pspath", "lp"}, position: -1},
			{name: "force", isSwitch: true, position: -1},
			{name: "recurse", isSwitch: true, position: -1},
			{name: "deletekey", isSwitch: true, position: -1},
		},
		module: true,
		run: func(c *psCall) ([]any, error) {
			p, literal := c.path()
			if !literal && strings.ContainsAny(p, "*?[") {
				return nil, &psUnsupported{msg: fmt.Sprintf("Remove-Item with wildcards %q", p), at: c.e.at}
			}
			if drive, rest := psDrive(p); drive == "cert" || drive == "provider:certificate" {
				return nil, c.removeCertificate(p, rest)
			}
			if c.flag("deletekey") {
				return nil, &psUnsupported{msg: "Remove-Item -DeleteKey outside the Cert: drive", at: c.e.at}
			}
			fp, err := c.rt.fsPath(p, c.e)
			if err != nil {
				return nil, err
			}
			f := c.rt.files()
			ok, dir := f.exists(fp)
			switch {
			case !ok:
				return nil, c.pathNotFound(p, "RemoveItemCommand")
			case dir && c.flag("recurse"):
				err = f.RemoveAll(fp)
			case dir:
				if entries, _ := f.ReadDir(fp); len(entries) > 0 {
					return nil, &psUnsupported{msg: fmt.Sprintf("Remove-Item of the non-empty directory %s without -Recurse (PowerShell asks for confirmation)", p), at: c.e.at}
				}
				err = f.Remove(fp)
			default:
				err = f.Remove(fp)
			}
			if err != nil {
				return nil, c.nonTerminating(&psErrorRecord{message: dotnetIOMessage(err, p), category: "WriteError", target: p, exception: "IOException", fqid: "RemoveFileSystemItemIOError,Microsoft.PowerShell.Commands.RemoveItemCommand"})
			}
			return nil, nil
		},
	}
	newItem := func(forceDir bool) *psCmdlet {
		return &psCmdlet{
			params: []psParam{
				{name: "path", position: 0},
				{name: "name", position: -1},
				{name: "itemtype", aliases: []string{"type"}, position: -1},
				{name: "value", aliases: []string{"target"}, position: -1},
				{name: "force", isSwitch: true, position: -1},
			},
			module: true,
			run: func(c *psCall) ([]any, error) {
				p := c.str("path")
				if p == "" {
					p = c.rt.cwd
				}
				if c.has("name") {
					p = strings.TrimSuffix(p, `\`) + `\` + c.str("name")
				}
				typ := strings.ToLower(c.str("itemtype"))
				if forceDir {
					typ = "directory"
				}
				if typ != "directory" && typ != "file" {
					return nil, &psUnsupported{msg: fmt.Sprintf("New-Item -ItemType %q", c.str("itemtype")), at: c.e.at}
				}
				fp, err := c.rt.fsPath(p, c.e)
				if err != nil {
					return nil, err
				}
				f := c.rt.files()
				abs, err := f.Abs(fp)
				if err != nil {
					return nil, c.nonTerminating(&psErrorRecord{message: winErrText(err), category: "WriteError", target: p, exception: "IOException", fqid: "NewItemIOError,Microsoft.PowerShell.Commands.NewItemCommand"})
				}
				exists, isDir := f.exists(fp)
				item := &psFileItem{parent: abs[:strings.LastIndexByte(abs, '\\')], name: abs[strings.LastIndexByte(abs, '\\')+1:], dir: typ == "directory", mtime: c.rt.m.clock.Now()}
				if strings.HasSuffix(item.parent, ":") {
					item.parent += `\`
				}
				if exists && (!c.flag("force") || isDir != item.dir) {
					return nil, c.nonTerminating(&psErrorRecord{message: fmt.Sprintf("An item with the specified name %s already exists.", abs), category: "ResourceExists",
						target: abs, exception: "IOException", fqid: "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand"})
				}
				if item.dir {
					err = f.MkdirAll(fp)
				} else {
					value := c.str("value")
					if strings.IndexFunc(value, func(r rune) bool { return r > unicode.MaxASCII }) >= 0 {
						return nil, &psUnsupported{msg: "New-Item -Value with non-ASCII text (its encoding is not modelled)", at: c.e.at}
					}
					if c.flag("force") {
						err = f.WriteFile(fp, []byte(value))
					} else if w, e2 := f.CreateNew(fp); e2 != nil {
						err = e2
					} else {
						_, err = w.Write([]byte(value))
						w.Close()
					}
					item.length = int64(len(value))
				}
				if err != nil {
					return nil, c.nonTerminating(&psErrorRecord{message: dotnetIOMessage(err, abs), category: "WriteError", target: abs, exception: "IOException", fqid: "NewItemIOError,Microsoft.PowerShell.Commands.NewItemCommand"})
				}
				return []any{item}, nil
			},
		}
	}
	getContent := &psCmdlet{
		params: []psParam{
			{name: "path", position: 0},
			{name: "literalpath", aliases: []string{"pspath", "lp"}, position: -1},
			{name: "raw", isSwitch: true, position: -1},
		},
		module: true,
		run: func(c *psCall) ([]any, error) {
			p, _ := c.path()
			fp, err := c.rt.fsPath(p, c.e)
			if err != nil {
				return nil, err
			}
			data, err := c.rt.files().ReadFile(fp)
			if err != nil {
				return nil, c.pathNotFound(p, "GetContentCommand")
			}
			text := decodeScriptFile(data)
			if c.flag("raw") {
				return []any{text}, nil
			}
			text = strings.ReplaceAll(text, "\r\n", "\n")
			text = strings.TrimSuffix(text, "\n")
			if text == "" {
				return nil, nil
			}
			var out []any
			for _, l := range strings.Split(text, "\n") {
				out = append(out, l)
			}
			return out, nil
		},
	}
	psCmdlets = map[string]*psCmdlet{
		"write-host":   writeHost,
		"write-output": writeOutput, "echo": writeOutput, "write": writeOutput,
		"write-error": writeError,
		"start-sleep": startSleep, "sleep": startSleep,
		"test-path":    testPath,
		"get-location": getLocation, "pwd": getLocation, "gl": getLocation,
		"set-location": setLocation, "cd": setLocation, "sl": setLocation, "chdir": setLocation,
		"remove-item": removeItem, "rm": removeItem, "del": removeItem, "ri": removeItem, "erase": removeItem, "rmdir": removeItem, "rd": removeItem,
		"new-item": newItem(false), "ni": newItem(false), "mkdir": newItem(true), "md": newItem(true),
		"get-content": getContent, "gc": getContent, "cat": getContent, "type": getContent,
		"set-content": setContent, "sc": setContent,
	}
	for name, cmdlet := range sysprepCmdlets {
		psCmdlets[name] = cmdlet
	}
}

// psDrive splits a PowerShell drive-qualified path: ("hklm", rest) for
// "HKLM:\x" or "HKLM:x"; ("", p) for a file-system or relative path.
func psDrive(p string) (drive, rest string) {
	if i := strings.Index(strings.ToLower(p), "::"); i >= 0 {
		prov := strings.ToLower(p[:i])
		prov = prov[strings.LastIndexByte(prov, '\\')+1:]
		return "provider:" + prov, p[i+2:]
	}
	i := strings.IndexByte(p, ':')
	if i < 2 {
		return "", p
	}
	for _, r := range p[:i] {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return "", p
		}
	}
	return strings.ToLower(p[:i]), p[i+1:]
}

// fsPath checks that p is a file-system path and returns it without a
// provider prefix.
func (rt *psRuntime) fsPath(p string, e *psElem) (string, error) {
	drive, rest := psDrive(p)
	switch drive {
	case "":
		return p, nil
	case "provider:filesystem":
		return rest, nil
	}
	return "", &psUnsupported{msg: fmt.Sprintf("the path %q on the PowerShell drive %q is not modelled here", p, drive), at: e.at}
}

// itemExists tests a path on the FileSystem, Registry, Variable or
// Environment provider; leaf is true for files, variables and environment
// variables.
func (rt *psRuntime) itemExists(p string, e *psElem) (ok, leaf bool, err error) {
	drive, rest := psDrive(p)
	switch drive {
	case "", "provider:filesystem":
		ok, dir := rt.files().exists(rest)
		return ok, !dir, nil
	case "hklm", "hkcu", "provider:registry":
		key := rest
		if drive != "provider:registry" {
			key = drive + `:\` + rest
		}
		found, err := rt.m.RegistryFor(rt.p.user).KeyExists(key)
		if err != nil {
			return false, false, &psUnsupported{msg: fmt.Sprintf("registry path %q: %v", p, err), at: e.at}
		}
		return found, false, nil
	case "variable":
		name := strings.ToLower(strings.TrimLeft(rest, `\`))
		for _, s := range []string{"global:", "script:", "local:"} {
			name = strings.TrimPrefix(name, s)
		}
		if name == "" {
			return true, false, nil
		}
		if builtinVariables[name] {
			return true, true, nil
		}
		_, found := rt.vars[name]
		return found, true, nil
	case "env":
		name := strings.TrimLeft(rest, `\`)
		if name == "" {
			return true, false, nil
		}
		_, found := rt.p.env.get(name)
		return found, true, nil
	case "cert", "provider:certificate":
		return rt.certItemExists(p, rest, e)
	}
	return false, false, &psUnsupported{msg: fmt.Sprintf("Test-Path on the PowerShell drive %q (%q)", drive, p), at: e.at}
}
