package winsim

import (
	"regexp"
	"strings"
	"unicode"
)

// winrmcp (github.com/packer-community/winrmcp), Packer's upload path,
// restores an upload with a PowerShell script that loops over .NET stream
// objects, beyond the interpreted subset. The stand-in recognises that
// script by its exact structure (whitespace aside), takes its two
// parameters (the temporary file and the destination) and performs it on
// the simulated files. The other winrmcp commands (the `echo ... >>`
// chunks and the cleanup script) run through the ordinary interpreters.

// restoreStructure is the restore script's statements with the
// temporary-file and destination literals as @TMP@ and @DEST@; whitespace
// does not count.
const restoreStructure = `
$tmp_file_path = [System.IO.Path]::GetFullPath("@TMP@")
$dest_file_path = [System.IO.Path]::GetFullPath("@DEST@".Trim("'"))
if (Test-Path $dest_file_path) {
  if (Test-Path -Path $dest_file_path -PathType container) { Exit 1 } else { rm $dest_file_path }
} else {
  $dest_dir = ([System.IO.Path]::GetDirectoryName($dest_file_path))
  New-Item -ItemType directory -Force -ErrorAction SilentlyContinue -Path $dest_dir | Out-Null
}
if (Test-Path $tmp_file_path) {
  $reader = [System.IO.File]::OpenText($tmp_file_path)
  $writer = [System.IO.File]::OpenWrite($dest_file_path)
  try {
    for(;;) {
      $base64_line = $reader.ReadLine()
      if ($base64_line -eq $null) { break }
      $bytes = [System.Convert]::FromBase64String($base64_line)
      $writer.write($bytes, 0, $bytes.Length)
    }
  } finally { $reader.Close(); $writer.Close() }
} else { echo $null > $dest_file_path }
`

var (
	restoreCompact = compactPS(restoreStructure)
	restoreTmpRe   = regexp.MustCompile(`(?i)\$tmp_file_path\s*=\s*\[System\.IO\.Path\]::GetFullPath\("([^"]*)"\)`)
	restoreDestRe  = regexp.MustCompile(`(?i)\$dest_file_path\s*=\s*\[System\.IO\.Path\]::GetFullPath\("([^"]*)"\.Trim\("'"\)\)`)
)

func compactPS(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == ';' {
			return -1
		}
		return r
	}, s)
}

type restoreParams struct{ tmp, dest string }

// matchWinrmcpRestore recognises winrmcp's restore script.
func matchWinrmcpRestore(script string) (restoreParams, bool) {
	t := restoreTmpRe.FindStringSubmatchIndex(script)
	d := restoreDestRe.FindStringSubmatchIndex(script)
	if t == nil || d == nil || d[2] < t[3] {
		return restoreParams{}, false
	}
	r := restoreParams{tmp: script[t[2]:t[3]], dest: script[d[2]:d[3]]}
	rest := script[:t[2]] + "@TMP@" + script[t[3]:d[2]] + "@DEST@" + script[d[3]:]
	if !strings.EqualFold(compactPS(rest), restoreCompact) {
		return restoreParams{}, false
	}
	return r, true
}

// expandString evaluates s as the content of a double-quoted string.
func (rt *psRuntime) expandString(s string, e *psElem) (v string, err error) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*psParseError)
			if !ok {
				panic(r)
			}
			err = &psUnsupported{msg: "PowerShell string: " + pe.msg, at: e.at}
		}
	}()
	p := &psParser{src: []rune(`"` + s + `"`)}
	x := p.primary()
	if !p.eof() {
		return "", &psUnsupported{msg: "PowerShell string " + s, at: e.at}
	}
	val, err := rt.eval(x, e)
	return toString(val), err
}

// winrmcpRestore performs the restore script.
func (rt *psRuntime) winrmcpRestore(r restoreParams) uint32 {
	e := &psElem{at: psPos{strings.Index(string(rt.src), "[System.IO.Path]::GetFullPath")}, source: "[System.IO.Path]::GetFullPath"}
	fail := func(err error) uint32 {
		switch err := err.(type) {
		case *psUnsupported:
			return rt.unsupported(err)
		case *psStatementError:
			rt.writeError(err.rec)
		}
		return 1
	}
	tmpS, err := rt.expandString(r.tmp, e)
	if err != nil {
		return fail(err)
	}
	destS, err := rt.expandString(r.dest, e)
	if err != nil {
		return fail(err)
	}
	destS = strings.Trim(destS, "'")
	f := rt.files()
	tmp, err1 := f.Abs(tmpS)
	dest, err2 := f.Abs(destS)
	if err1 != nil || err2 != nil || tmpS == "" || destS == "" {
		return fail(rt.methodError(e, "GetFullPath", 1, "The path is not of a legal form.", "ArgumentException"))
	}
	if ok, dir := f.exists(dest); ok {
		if dir {
			return 1
		}
		if err := f.Remove(dest); err != nil {
			rt.writeError(&psErrorRecord{message: dotnetIOMessage(err, dest), activity: "rm", category: "WriteError", target: dest, exception: "IOException", fqid: "RemoveFileSystemItemIOError,Microsoft.PowerShell.Commands.RemoveItemCommand", at: e.at, source: "rm $dest_file_path"})
		}
	} else {
		// winrmcp runs New-Item -ItemType directory -Force -ErrorAction
		// SilentlyContinue: a directory it cannot make shows at the next write.
		_ = f.MkdirAll(dest[:strings.LastIndexByte(dest, '\\')+1])
	}
	if ok, _ := f.exists(tmp); !ok {
		w, err := f.CreateNew(dest)
		if err != nil {
			return fail(&psStatementError{rec: &psErrorRecord{message: dotnetIOMessage(err, dest), activity: "out-file", category: "OpenError", target: ":", exception: "DirectoryNotFoundException", fqid: "FileOpenFailure,Microsoft.PowerShell.Commands.OutFileCommand", at: e.at, source: "echo $null > $dest_file_path"}})
		}
		w.Close()
		return 0
	}
	data, err := f.ReadFile(tmp)
	if err != nil {
		return fail(rt.methodError(e, "OpenText", 1, dotnetIOMessage(err, tmp), "UnauthorizedAccessException"))
	}
	w, err := f.CreateNew(dest)
	if err != nil {
		return fail(rt.methodError(e, "OpenWrite", 1, dotnetIOMessage(err, dest), "DirectoryNotFoundException"))
	}
	defer w.Close()
	text := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		b, err := fromBase64(l)
		if err != nil {
			return fail(rt.methodError(e, "FromBase64String", 1, base64Invalid, "FormatException"))
		}
		if _, err := w.Write(b); err != nil {
			return fail(rt.methodError(e, "Write", 3, err.Error(), "IOException"))
		}
	}
	return 0
}
