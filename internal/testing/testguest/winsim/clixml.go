package winsim

import (
	"fmt"
	"io"
	"strings"
)

// clixml writes PowerShell's serialized error and progress stream, the
// `#< CLIXML` document powershell.exe puts on a redirected stderr.
type clixml struct {
	w       io.Writer
	started bool
	refID   int
}

const clixmlHeader = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">"

func (c *clixml) start() {
	if !c.started {
		_, _ = io.WriteString(c.w, clixmlHeader)
		c.started = true
	}
}

// progress writes the "Preparing modules for first use." record.
func (c *clixml) progress() {
	c.start()
	fmt.Fprintf(c.w, `<Obj S="progress" RefId="%d"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>`, c.refID)
	c.refID++
}

// errorText writes the lines of a formatted error record.
func (c *clixml) errorText(text string) {
	c.start()
	lines := strings.SplitAfter(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		_, _ = io.WriteString(c.w, `<S S="Error">`+clixmlEscape(strings.ReplaceAll(l, "\n", "\r\n"))+`</S>`)
	}
}

func (c *clixml) close() {
	if c.started {
		_, _ = io.WriteString(c.w, "</Objs>")
	}
}

// clixmlEscape escapes XML and encodes control characters as _xHHHH_ (an
// underscore that would start such a sequence is itself encoded).
func clixmlEscape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r < 0x20:
			fmt.Fprintf(&b, "_x%04X_", r)
		case r == '_' && i+1 < len(s) && s[i+1] == 'x':
			b.WriteString("_x005F_")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
