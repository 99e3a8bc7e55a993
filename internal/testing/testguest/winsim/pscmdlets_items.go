package winsim

import (
	"fmt"
	"strings"
	"unicode"
)

// psItemCmdlets are the cmdlets that make, remove and read items
// (Set-Content is pssetcontent.go's).
func psItemCmdlets() map[string]*psCmdlet {
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
	return map[string]*psCmdlet{
		"remove-item": removeItem, "rm": removeItem, "del": removeItem, "ri": removeItem, "erase": removeItem, "rmdir": removeItem, "rd": removeItem,
		"new-item": psNewItem(false), "ni": psNewItem(false), "mkdir": psNewItem(true), "md": psNewItem(true),
		"get-content": getContent, "gc": getContent, "cat": getContent, "type": getContent,
		"set-content": setContent, "sc": setContent,
	}
}

// psNewItem is New-Item; mkdir and md are New-Item -ItemType Directory.
func psNewItem(forceDir bool) *psCmdlet {
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
