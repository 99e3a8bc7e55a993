package winsim

import (
	"fmt"
	"strings"
	"unicode"
)

// Set-Content -Path <file> -Value <value(s)> writes each value on its own
// line ("\r\n" after each), in Windows PowerShell 5.1's default encoding
// (the ANSI code page: only ASCII text is modelled). The file is replaced;
// its directory must exist.
var setContent = &psCmdlet{
	params: []psParam{
		{name: "path", position: 0},
		{name: "literalpath", aliases: []string{"pspath", "lp"}, position: -1},
		{name: "value", position: 1},
		{name: "force", isSwitch: true, position: -1},
	},
	module: true,
	run: func(c *psCall) ([]any, error) {
		p, literal := c.path()
		if !literal && strings.ContainsAny(p, "*?[") {
			return nil, &psUnsupported{msg: fmt.Sprintf("Set-Content with wildcards %q", p), at: c.e.at}
		}
		fp, err := c.rt.fsPath(p, c.e)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, v := range flatten([]any{c.named["value"]}) {
			b.WriteString(toString(v) + "\r\n")
		}
		text := b.String()
		if strings.IndexFunc(text, func(r rune) bool { return r > unicode.MaxASCII }) >= 0 {
			return nil, &psUnsupported{msg: "Set-Content with non-ASCII text (its encoding is not modelled)", at: c.e.at}
		}
		f := c.rt.files()
		abs, err := f.Abs(fp)
		if err != nil {
			return nil, c.nonTerminating(&psErrorRecord{message: winErrText(err), category: "WriteError", target: p, exception: "IOException", fqid: "GetContentWriterIOError,Microsoft.PowerShell.Commands.SetContentCommand"})
		}
		parent := abs[:strings.LastIndexByte(abs, '\\')+1]
		if ok, dir := f.exists(parent); !ok || !dir {
			return nil, c.nonTerminating(&psErrorRecord{message: fmt.Sprintf("Could not find a part of the path '%s'.", abs), category: "ObjectNotFound",
				target: abs, exception: "DirectoryNotFoundException", fqid: "GetContentWriterDirectoryNotFoundError,Microsoft.PowerShell.Commands.SetContentCommand"})
		}
		if ok, dir := f.exists(fp); ok && dir {
			return nil, c.nonTerminating(&psErrorRecord{message: fmt.Sprintf("Access to the path '%s' is denied.", abs), category: "PermissionDenied",
				target: abs, exception: "UnauthorizedAccessException", fqid: "GetContentWriterUnauthorizedAccessError,Microsoft.PowerShell.Commands.SetContentCommand"})
		}
		if err := f.WriteFile(fp, []byte(text)); err != nil {
			return nil, c.nonTerminating(&psErrorRecord{message: dotnetIOMessage(err, abs), category: "WriteError", target: abs, exception: "IOException", fqid: "GetContentWriterIOError,Microsoft.PowerShell.Commands.SetContentCommand"})
		}
		return nil, nil
	},
}
