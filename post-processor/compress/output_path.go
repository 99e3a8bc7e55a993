package compress

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// mkdirAllCreated is os.MkdirAll that returns the directories it created,
// outermost first.
func mkdirAllCreated(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	return missing, os.MkdirAll(dir, 0o755)
}

// removeCreated removes the directories mkdirAllCreated made, innermost
// first, where they are empty.
func removeCreated(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}

// outputPath renders the output path for the input disk src, and refuses
// paths that would overwrite the input or, without -force, another file.
func (p *PostProcessor) outputPath(src string, spec formatSpec) (string, error) {
	c := &p.config
	base := filepath.Base(src)
	data := outputTemplateData{
		InputDir:  filepath.Dir(src),
		InputName: strings.TrimSuffix(base, filepath.Ext(base)),
		Ext:       spec.Name,
	}
	tmpl := c.Output
	if tmpl == "" {
		tmpl = defaultOutput
	}
	out, err := c.renderOutput(tmpl, data)
	if err != nil {
		return "", fmt.Errorf("output: %w", err)
	}
	if out, err = filepath.Abs(out); err != nil {
		return "", fmt.Errorf("output: %w", err)
	}
	if sameFile(out, src) {
		if c.Output != "" {
			return "", fmt.Errorf("output: %s is the input disk image; choose another path", out)
		}
		if out, err = c.renderOutput(defaultOutputOnCollision, data); err != nil {
			return "", fmt.Errorf("output: %w", err)
		}
		if out, err = filepath.Abs(out); err != nil {
			return "", fmt.Errorf("output: %w", err)
		}
	}
	if fi, err := os.Stat(out); err == nil {
		if fi.IsDir() {
			return "", fmt.Errorf("output: %s is a directory; name a file", out)
		}
		if !c.PackerForce {
			return "", fmt.Errorf("output: %s already exists; remove it or run Packer with -force", out)
		}
	}
	return out, nil
}

func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
