package winsim

import (
	"fmt"
	"path"
	"strings"
)

// runWUSA is C:\Windows\System32\wusa.exe.
func (m *Machine) runWUSA(p *proc) uint32 {
	var msu, extract string
	var quiet, noRestart bool
	for _, a := range p.args {
		la := strings.ToLower(a)
		switch {
		case la == "/quiet":
			quiet = true
		case la == "/norestart":
			noRestart = true
		case strings.HasPrefix(la, "/extract:"):
			extract = a[len("/extract:"):]
		case strings.HasPrefix(la, "/log:"):
		case !strings.HasPrefix(a, "/") && msu == "":
			msu = a
		default:
			m.unsupportedf("wusa.exe argument not understood: %q", a)
			return 87
		}
	}
	if msu == "" {
		m.unsupportedf("wusa.exe without a package: %q", p.args)
		return 87
	}
	exists, dir := p.files.exists(msu)
	if !exists || dir {
		return 2
	}
	name := msu[strings.LastIndexAny(msu, `\/`)+1:]
	pkg := m.packageForFile(p.files, msu)
	if pkg == nil || !strings.EqualFold(path.Ext(name), ".msu") {
		m.unsupportedf("wusa.exe %s: not an .msu in the catalog", msu)
		return 2
	}
	if extract != "" {
		if ex, isDir := p.files.exists(extract); !ex || !isDir {
			m.unsupportedf("wusa.exe /extract:%s: the directory does not exist (what wusa does then is not modelled; create it first)", extract)
			return 3
		}
		if _, err := m.extractPackage(pkg, extract, p.files); err != nil {
			return 5
		}
		return 0
	}
	if !quiet || !noRestart {
		m.unsupportedf("wusa.exe %s without /quiet /norestart would show UI or restart on its own", msu)
		return 87
	}
	if p.logon == logonNetwork {
		return ExitAccessDenied
	}
	code, _ := m.installPackage(p.ctx, pkg, toolWUSA, nil)
	return code
}

// runExpand is C:\Windows\System32\expand.exe, for `expand -F:* x.msu dir`.
func (m *Machine) runExpand(p *proc) uint32 {
	var filter, src, dst string
	for _, a := range p.args {
		la := strings.ToLower(a)
		switch {
		case strings.HasPrefix(la, "-f:") || strings.HasPrefix(la, "/f:"):
			filter = a[3:]
		case !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "/") && src == "":
			src = a
		case !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "/") && dst == "":
			dst = a
		default:
			m.unsupportedf("expand.exe argument not understood: %q", a)
			return 1
		}
	}
	if filter != "*" || src == "" || dst == "" {
		m.unsupportedf("expand.exe: only `expand -F:* <msu> <dir>` is modelled, got %q", p.args)
		return 1
	}
	fmt.Fprintf(p.stdout, "Microsoft (R) File Expansion Utility\r\nCopyright (c) Microsoft Corporation. All rights reserved.\r\n\r\n")
	exists, isDir := p.files.exists(src)
	if !exists || isDir {
		fmt.Fprintf(p.stdout, "Can't open input file: %s.\r\n", src)
		return 1
	}
	name := src[strings.LastIndexAny(src, `\/`)+1:]
	pkg := m.packageForFile(p.files, src)
	if pkg == nil || !strings.EqualFold(path.Ext(name), ".msu") {
		m.unsupportedf("expand.exe %s: not an .msu in the catalog", src)
		return 1
	}
	if ex, d := p.files.exists(dst); !ex || !d {
		m.unsupportedf("expand.exe into %s: the directory does not exist (not modelled; create it first)", dst)
		return 1
	}
	written, err := m.extractPackage(pkg, dst, p.files)
	if err != nil {
		fmt.Fprintf(p.stdout, "Can't open output file: %v\r\n", err)
		return 1
	}
	for _, w := range written {
		fmt.Fprintf(p.stdout, "Adding %s to Extraction Queue\r\n", w)
	}
	fmt.Fprintf(p.stdout, "\r\nExpanding Files ....\r\n\r\nExpanding Files Complete ...\r\n%d files total.\r\n", len(written))
	return 0
}
