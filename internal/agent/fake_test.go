package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// fakeSystem is an in-memory Windows for the tests: a registry map,
// scripted processes, a boot clock and files.
type fakeSystem struct {
	t     *testing.T
	reg   *fakeRegistry
	procs *fakeProcesses
	power *fakePower
	files *fakeFiles
}

func newFakeSystem(t *testing.T) *fakeSystem {
	t.Helper()
	s := &fakeSystem{
		t:     t,
		reg:   &fakeRegistry{keys: map[string]map[string]any{}},
		power: &fakePower{boot: time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("CET", 3600))},
		files: &fakeFiles{fs: fstest.MapFS{}},
	}
	s.procs = &fakeProcesses{t: t, sys: s}
	t.Cleanup(func() {
		if n := len(s.procs.script); n > 0 {
			t.Errorf("%d expected program run(s) never happened, first: %s %q", n, s.procs.script[0].path, s.procs.script[0].args)
		}
	})
	return s
}

func (s *fakeSystem) Registry() Registry   { return s.reg }
func (s *fakeSystem) Processes() Processes { return s.procs }
func (s *fakeSystem) Power() Power         { return s.power }
func (s *fakeSystem) Files() Files         { return s.files }

// --- registry ---

type fakeRegistry struct {
	keys   map[string]map[string]any // lower-cased key path -> values (string or uint32)
	err    error                     // returned by every call when set
	errKey string                    // ... only for this key when set
}

func (r *fakeRegistry) fail(key string) error {
	if r.err != nil && (r.errKey == "" || strings.EqualFold(r.errKey, key)) {
		return r.err
	}
	return nil
}

// addKey creates a key (and its parents, as the registry has them).
func (r *fakeRegistry) addKey(key string) map[string]any {
	parts := strings.Split(key, `\`)
	for n := 1; n <= len(parts); n++ {
		k := strings.ToLower(strings.Join(parts[:n], `\`))
		if r.keys[k] == nil {
			r.keys[k] = map[string]any{}
		}
	}
	return r.keys[strings.ToLower(key)]
}

func (r *fakeRegistry) set(key, name string, v any) {
	r.addKey(key)[strings.ToLower(name)+"\x00"+name] = v
}

func (r *fakeRegistry) KeyExists(key string) (bool, error) {
	if err := r.fail(key); err != nil {
		return false, err
	}
	_, ok := r.keys[strings.ToLower(key)]
	return ok, nil
}

func (r *fakeRegistry) SubKeys(key string) ([]string, error) {
	if err := r.fail(key); err != nil {
		return nil, err
	}
	if _, ok := r.keys[strings.ToLower(key)]; !ok {
		return nil, fmt.Errorf("key %s: %w", key, fs.ErrNotExist)
	}
	prefix := strings.ToLower(key) + `\`
	var subs []string
	for k := range r.keys {
		if rest, ok := strings.CutPrefix(k, prefix); ok && !strings.Contains(rest, `\`) {
			subs = append(subs, rest)
		}
	}
	slices.Sort(subs)
	return subs, nil
}

func (r *fakeRegistry) ValueNames(key string) ([]string, error) {
	if err := r.fail(key); err != nil {
		return nil, err
	}
	vals, ok := r.keys[strings.ToLower(key)]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", key, fs.ErrNotExist)
	}
	var names []string
	for k := range vals {
		_, name, _ := strings.Cut(k, "\x00")
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func (r *fakeRegistry) value(key, name string) (any, bool) {
	vals, ok := r.keys[strings.ToLower(key)]
	if !ok {
		return nil, false
	}
	for k, v := range vals {
		if strings.HasPrefix(k, strings.ToLower(name)+"\x00") {
			return v, true
		}
	}
	return nil, false
}

func (r *fakeRegistry) String(key, name string) (string, bool, error) {
	if err := r.fail(key); err != nil {
		return "", false, err
	}
	v, ok := r.value(key, name)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("%s %s is not a string", key, name)
	}
	return s, true, nil
}

func (r *fakeRegistry) DWORD(key, name string) (uint32, bool, error) {
	if err := r.fail(key); err != nil {
		return 0, false, err
	}
	v, ok := r.value(key, name)
	if !ok {
		return 0, false, nil
	}
	d, ok := v.(uint32)
	if !ok {
		return 0, false, fmt.Errorf("%s %s is not a DWORD", key, name)
	}
	return d, true, nil
}

func (r *fakeRegistry) SetString(key, name, value string) error {
	r.set(key, name, value)
	return nil
}

func (r *fakeRegistry) SetDWORD(key, name string, value uint32) error {
	r.set(key, name, value)
	return nil
}

func (r *fakeRegistry) DeleteValue(key, name string) error {
	if vals, ok := r.keys[strings.ToLower(key)]; ok {
		delete(vals, strings.ToLower(name)+"\x00"+name)
	}
	return nil
}

// --- processes ---

// call is one expected program run: the exact path and arguments, and what
// the program does.
type call struct {
	path   string
	args   []string
	code   uint32
	output string
	err    error             // Run's error (the program could not be run)
	effect func(*fakeSystem) // e.g. expand.exe writing files
}

type fakeProcesses struct {
	t      *testing.T
	sys    *fakeSystem
	mu     sync.Mutex
	script []call
	ran    []string
	// running are the image names Running reports, lower-case.
	running map[string]bool
}

func (p *fakeProcesses) Running(image string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[strings.ToLower(image)], nil
}

func (p *fakeProcesses) expect(c ...call) { p.script = append(p.script, c...) }

func (p *fakeProcesses) Run(ctx context.Context, path string, args []string, stdout, stderr io.Writer) (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.Helper()
	line := path + " " + strings.Join(args, " ")
	p.ran = append(p.ran, line)
	if len(p.script) == 0 {
		p.t.Errorf("unexpected program run: %s %q", path, args)
		return 0, errors.New("unexpected program")
	}
	c := p.script[0]
	p.script = p.script[1:]
	if c.path != path || !slices.Equal(c.args, args) {
		p.t.Errorf("program run:\n got  %s %q\n want %s %q", path, args, c.path, c.args)
		return 0, errors.New("unexpected command line")
	}
	if c.effect != nil {
		c.effect(p.sys)
	}
	_, _ = io.WriteString(stdout, c.output)
	return c.code, c.err
}

// --- power ---

type fakePower struct {
	boot       time.Time
	bootErr    error
	restarts   []string // "delay reason"
	restartErr error
}

func (p *fakePower) BootTime() (time.Time, error) { return p.boot, p.bootErr }

func (p *fakePower) Restart(delay time.Duration, reason string) error {
	if p.restartErr != nil {
		return p.restartErr
	}
	p.restarts = append(p.restarts, fmt.Sprintf("%s %s", delay, reason))
	return nil
}

func (p *fakePower) PowerOff(time.Duration, string) error {
	return errors.New("power-off not expected")
}

// --- files ---

// fakeFiles keeps files in an fstest.MapFS keyed by the Windows path with
// '/' for '\' ("C:/Windows/Temp/x.cab").
type fakeFiles struct {
	mu        sync.Mutex
	fs        fstest.MapFS
	removeErr error
}

func fsKey(p string) string { return strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/") }

// put writes a file, creating its parent directories like the file
// system would have them (every directory is an explicit entry).
func (f *fakeFiles) put(p string, data []byte) {
	if d := winDir(p); d != "" {
		if err := f.MkdirAll(d); err != nil {
			panic(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fs[fsKey(p)] = &fstest.MapFile{Data: data, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
}

func (f *fakeFiles) get(p string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mf, ok := f.fs[fsKey(p)]
	if !ok || mf.Mode.IsDir() {
		return nil, false
	}
	return mf.Data, true
}

func (f *fakeFiles) exists(p string) bool {
	_, err := f.Stat(p)
	return err == nil
}

func (f *fakeFiles) Stat(p string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fs.Stat(f.fs, fsKey(p))
}

func (f *fakeFiles) Open(p string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mf, ok := f.fs[fsKey(p)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return io.NopCloser(bytes.NewReader(slices.Clone(mf.Data))), nil
}

type fakeWriter struct {
	f    *fakeFiles
	path string
}

func (w *fakeWriter) Write(b []byte) (int, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	mf := w.f.fs[fsKey(w.path)]
	mf.Data = append(mf.Data, b...)
	return len(b), nil
}

func (w *fakeWriter) Close() error { return nil }

func (f *fakeFiles) Create(p string) (io.WriteCloser, error) {
	f.put(p, nil)
	return &fakeWriter{f: f, path: p}, nil
}

func (f *fakeFiles) Append(p string) (io.WriteCloser, error) {
	if !f.exists(p) {
		f.put(p, nil)
	}
	return &fakeWriter{f: f, path: p}, nil
}

func (f *fakeFiles) ReadDir(p string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fs.ReadDir(f.fs, fsKey(p))
}

func (f *fakeFiles) MkdirAll(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(fsKey(p), "/")
	for n := 1; n <= len(parts); n++ {
		k := strings.Join(parts[:n], "/")
		if mf, ok := f.fs[k]; ok && !mf.Mode.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", p)
		} else if !ok {
			f.fs[k] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		}
	}
	return nil
}

func (f *fakeFiles) Remove(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removeErr != nil {
		return f.removeErr
	}
	k := fsKey(p)
	if _, ok := f.fs[k]; !ok {
		return &fs.PathError{Op: "remove", Path: p, Err: fs.ErrNotExist}
	}
	for other := range f.fs {
		if strings.HasPrefix(other, k+"/") {
			return fmt.Errorf("remove %s: directory not empty", p)
		}
	}
	delete(f.fs, k)
	return nil
}

// --- running Main ---

// run runs Main and decodes its one JSON document into doc (a pointer to a
// result struct). It checks that stdout holds exactly one JSON value.
func run(t *testing.T, sys System, doc any, args ...string) (code uint32, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), sys, args, strings.NewReader(""), &out, &errb)
	decodeOne(t, out.Bytes(), doc)
	return code, errb.String()
}

func decodeOne(t *testing.T, b []byte, doc any) {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("stdout is not one line of JSON: %q", b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(doc); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	if d.More() {
		t.Fatalf("more than one JSON document on stdout: %s", b)
	}
}
