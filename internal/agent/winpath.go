package agent

import "strings"

// The agent handles Windows paths (`C:\Windows\Temp\x.cab`) even when its
// logic runs on Linux inside the simulated guest, so it cannot use
// path/filepath, whose separator follows the host. These helpers accept both
// `\` and `/` as separators and always produce `\`.

// winJoin joins a directory and a name with a single backslash.
func winJoin(dir string, names ...string) string {
	p := strings.TrimRight(dir, `\/`)
	for _, n := range names {
		p += `\` + strings.Trim(n, `\/`)
	}
	return p
}

// winBase returns the last element of a Windows path.
func winBase(p string) string {
	p = strings.TrimRight(p, `\/`)
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// winDir returns everything before the last element of a Windows path,
// without the trailing separator ("" when there is none; `C:\` stays `C:\`).
func winDir(p string) string {
	p = strings.TrimRight(p, `\/`)
	i := strings.LastIndexAny(p, `\/`)
	if i < 0 {
		return ""
	}
	if i == 2 && p[1] == ':' {
		return p[:3]
	}
	return p[:i]
}

// winExt returns the lower-cased extension of a Windows path's last
// element, dot included (".msu"), or "".
func winExt(p string) string {
	b := winBase(p)
	if i := strings.LastIndexByte(b, '.'); i >= 0 {
		return strings.ToLower(b[i:])
	}
	return ""
}

// winStem returns the last element without its extension.
func winStem(p string) string {
	b := winBase(p)
	if i := strings.LastIndexByte(b, '.'); i > 0 {
		return b[:i]
	}
	return b
}
