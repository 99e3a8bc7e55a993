package agent

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
)

// installMsu expands an .msu with expand.exe into a fresh directory under
// tempBase, adds its cabs with DISM in msuInstallOrder, and removes the
// directory again. An .msu whose payload is not in .cab files (.wim, .psf:
// Windows 11 24H2 and later) is given to DISM as it is. wusa.exe is not used: it fails with exit code 5 over
// WinRM (windows-servicing.md §1), and DISM /Online with an .msu is
// unverified, so the .msu is taken apart first.
func (i *installer) installMsu(ctx context.Context, msu, tempBase string) {
	res, files := i.res, i.e.sys.Files()
	dir := winJoin(tempBase, safeName(winStem(msu)))
	res.ExpandDir = dir
	if err := removeAll(files, dir); err != nil {
		res.Error = fmt.Sprintf("clearing %s: %v", dir, err)
		return
	}
	if err := files.MkdirAll(dir); err != nil {
		res.Error = fmt.Sprintf("creating %s: %v", dir, err)
		return
	}
	defer func() {
		if err := removeAll(files, dir); err != nil {
			res.warn("removing %s: %v", dir, err)
		}
	}()

	i.e.progress("expanding %s into %s", msu, dir)
	step := i.run(ctx, InstallStep{Program: i.program("expand.exe"), Args: []string{"-F:*", msu, dir}})
	res.Steps = append(res.Steps, step)
	switch {
	case step.Error != "":
		res.Error = fmt.Sprintf("running expand.exe: %s", step.Error)
	case ctx.Err() != nil:
		res.Error = fmt.Sprintf("cancelled while expanding %s: %v", msu, ctx.Err())
	case step.ExitCode != 0:
		res.Error = fmt.Sprintf("expand.exe failed on %s: exit code %d (%s)", msu, step.ExitCode, step.ExitCodeHex)
	}
	if res.Error != "" {
		res.ExitCode = step.ExitCode
		return
	}

	entries, err := files.ReadDir(dir)
	if err != nil {
		res.Error = fmt.Sprintf("listing %s: %v", dir, err)
		return
	}
	var cabs, unsupported []string
	var manifests [][]byte
	for _, ent := range entries {
		if ent.IsDir() {
			continue
		}
		name := ent.Name()
		switch winExt(name) {
		case ".cab":
			if !strings.EqualFold(name, "WSUSSCAN.cab") {
				cabs = append(cabs, name)
			}
		case ".xml":
			b, err := readFile(files, winJoin(dir, name))
			if err != nil {
				res.warn("reading %s: %v; ignoring it for the install order", name, err)
				continue
			}
			manifests = append(manifests, b)
		case ".wim", ".psf", ".esd":
			unsupported = append(unsupported, name)
		}
	}
	if len(unsupported) > 0 {
		// Windows 11 24H2 / Server 2025 packages (checkpoint cumulative
		// updates) keep their payload in a .wim/.psf, which DISM does not
		// take from an expanded folder: DISM gets the .msu itself, and
		// finds the checkpoint .msu files it needs in the same folder.
		res.warn("%s holds %s (a payload outside .cab files): adding the .msu itself with DISM, which takes checkpoint updates from its folder", winBase(msu), strings.Join(unsupported, ", "))
		i.installCabs(ctx, []string{msu})
		return
	}
	if len(cabs) == 0 {
		res.Error = fmt.Sprintf("%s holds no package .cab (besides WSUSSCAN.cab)", msu)
		return
	}
	order, warnings := msuInstallOrder(cabs, manifests)
	for _, w := range warnings {
		res.warn("%s", w)
	}
	paths := make([]string, len(order))
	for n, c := range order {
		paths[n] = winJoin(dir, c)
	}
	i.installCabs(ctx, paths)
}

// msuInstallOrder orders the package cabs of an expanded .msu (file names,
// WSUSSCAN.cab already left out):
//
//  1. servicing stack cabs ("SSU-*.cab"), by name: the servicing stack goes
//     before the update that needs it (0x800F0823 otherwise);
//  2. the cabs the .msu's XML manifests name, in the manifests' order (the
//     unattend-style <servicing><package><source location="...\x.cab"/>
//     entries, which is the order wusa would follow);
//  3. the remaining cabs by name (case-insensitive).
//
// Names are matched case-insensitively; manifests that do not parse are
// reported as warnings and ignored.
func msuInstallOrder(cabs []string, manifests [][]byte) (order []string, warnings []string) {
	remaining := slices.Clone(cabs)
	slices.SortFunc(remaining, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	take := func(pred func(string) bool) {
		for n := 0; n < len(remaining); {
			if pred(remaining[n]) {
				order = append(order, remaining[n])
				remaining = slices.Delete(remaining, n, n+1)
			} else {
				n++
			}
		}
	}
	take(func(c string) bool { return strings.HasPrefix(strings.ToLower(c), "ssu-") })
	for _, m := range manifests {
		sources, err := manifestSources(m)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("ignoring an .msu manifest for the install order: %v", err))
			continue
		}
		for _, src := range sources {
			take(func(c string) bool { return strings.EqualFold(c, winBase(src)) })
		}
	}
	take(func(string) bool { return true })
	return order, warnings
}

// manifestSources returns the location attributes of the <source> elements
// of an .msu's XML manifest, in document order.
func manifestSources(b []byte) ([]string, error) {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE { // UTF-16LE with a BOM
		u := make([]uint16, 0, len(b)/2)
		for n := 2; n+1 < len(b); n += 2 {
			u = append(u, uint16(b[n])|uint16(b[n+1])<<8)
		}
		b = []byte(string(utf16.Decode(u)))
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var out []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "source" {
			for _, a := range se.Attr {
				if a.Name.Local == "location" {
					out = append(out, a.Value)
				}
			}
		}
	}
}

// safeName keeps letters, digits, '.', '-' and '_' and replaces the rest.
func safeName(s string) string {
	b := []byte(s)
	for n, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[n] = '_'
		}
	}
	if len(b) == 0 {
		return "package"
	}
	return string(b)
}

// readFile reads a whole (small) file through Files.
func readFile(files Files, p string) ([]byte, error) {
	f, err := files.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}
