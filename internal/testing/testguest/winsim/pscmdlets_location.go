package winsim

import (
	"fmt"
	"strings"
	"unicode"
)

// psLocationCmdlets are Test-Path and the working-directory cmdlets.
func psLocationCmdlets() map[string]*psCmdlet {
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
	return map[string]*psCmdlet{
		"test-path":    testPath,
		"get-location": getLocation, "pwd": getLocation, "gl": getLocation,
		"set-location": setLocation, "cd": setLocation, "sl": setLocation, "chdir": setLocation,
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
