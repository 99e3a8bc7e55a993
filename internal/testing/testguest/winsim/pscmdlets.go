package winsim

import (
	"fmt"
	"strings"
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

// psCmdlets are the cmdlets the stand-in models, by lower-case name and
// alias (init assembles them from each area's table).
var psCmdlets map[string]*psCmdlet

func init() {
	psCmdlets = map[string]*psCmdlet{}
	for _, area := range []map[string]*psCmdlet{psOutputCmdlets(), psLocationCmdlets(), psItemCmdlets(), sysprepCmdlets} {
		for name, cmdlet := range area {
			psCmdlets[name] = cmdlet
		}
	}
}
