package winsim

import (
	"fmt"
	"strings"
	"time"
)

// psOutputCmdlets are the cmdlets that write to the host and the pipeline,
// and Start-Sleep.
func psOutputCmdlets() map[string]*psCmdlet {
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
	return map[string]*psCmdlet{
		"write-host":   writeHost,
		"write-output": writeOutput, "echo": writeOutput, "write": writeOutput,
		"write-error": writeError,
		"start-sleep": startSleep, "sleep": startSleep,
	}
}
