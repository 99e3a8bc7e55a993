package wsman

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// statusControlCExit is the exit code of a process ended by Ctrl+C or
// Terminate (STATUS_CONTROL_C_EXIT).
const statusControlCExit = 0xC000013A

// testHost is a Host that understands exactly the commands of the
// captures and of these tests, and fails the test on anything else.
type testHost struct {
	t *testing.T
	// sleepUnit is what one second of Start-Sleep lasts.
	sleepUnit time.Duration

	mu      sync.Mutex
	started []CommandRequest
	wg      sync.WaitGroup
}

func newTestHost(t *testing.T) *testHost {
	h := &testHost{t: t, sleepUnit: 100 * time.Millisecond}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { h.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("test host: processes still running after the server closed")
		}
	})
	return h
}

func (h *testHost) requests() []CommandRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]CommandRequest(nil), h.started...)
}

// script is the body of a test process; it returns the exit code.
type script func(p *testProc) uint32

func (h *testHost) Start(_ context.Context, req CommandRequest) (Process, error) {
	h.mu.Lock()
	h.started = append(h.started, req)
	h.mu.Unlock()
	var run script
	var err error
	if req.SkipCmdShell {
		if !strings.Contains(req.Command, `\`) {
			// CreateProcess without a path and without cmd.exe's search: what
			// test_winrs_no_cmd_shell.yml shows for plain "powershell.exe".
			return nil, &CommandFault{Code: CodeFileNotFound, Message: "The system cannot find the file specified."}
		}
		prog := strings.ToLower(req.Command[strings.LastIndex(req.Command, `\`)+1:])
		run, err = h.program(req, prog, req.Arguments)
	} else {
		run, err = h.cmdLine(req, strings.Join(append([]string{req.Command}, req.Arguments...), " "))
	}
	if err != nil {
		return nil, err
	}
	p := newTestProc()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		code := run(p)
		p.finish(code)
	}()
	return p, nil
}

func (h *testHost) unknown(what string) error {
	h.t.Errorf("test host: unknown command %q", what)
	return &CommandFault{Code: CodeFileNotFound, Message: "The system cannot find the file specified."}
}

// cmdLine interprets a line run through cmd.exe /c.
func (h *testHost) cmdLine(req CommandRequest, line string) (script, error) {
	trimmed := strings.TrimSpace(line)
	lower := strings.ToLower(trimmed)
	for _, p := range []string{"cmd.exe /c ", "cmd /c "} {
		if strings.HasPrefix(lower, p) {
			return h.cmdLine(req, trimmed[len(p):])
		}
	}
	if lower == "set" {
		return func(p *testProc) uint32 {
			p.write(streamStdout, h.setOutput(req))
			return 0
		}, nil
	}
	if strings.HasPrefix(lower, "echo ") || strings.HasPrefix(lower, "exit ") {
		// Builtins joined by &&, as in test_winrs_stderr_rc.yml.
		var steps []func(p *testProc) (uint32, bool)
		for _, seg := range strings.Split(trimmed, "&&") {
			seg = strings.TrimLeft(seg, " ")
			switch {
			case strings.HasPrefix(strings.ToLower(seg), "echo "):
				text, stream := seg[5:], streamStdout
				if strings.Contains(text, ">&2") {
					text, stream = strings.Replace(text, ">&2", "", 1), streamStderr
				}
				steps = append(steps, func(p *testProc) (uint32, bool) { p.write(stream, text+"\r\n"); return 0, false })
			case strings.HasPrefix(strings.ToLower(seg), "exit "):
				code, err := strconv.ParseUint(strings.TrimSpace(seg[5:]), 10, 32)
				if err != nil {
					return nil, h.unknown(line)
				}
				steps = append(steps, func(p *testProc) (uint32, bool) { return uint32(code), true })
			default:
				return nil, h.unknown(line)
			}
		}
		return func(p *testProc) uint32 {
			for i, st := range steps {
				if i > 0 {
					// Let the server see stdout and stderr in production order.
					p.pause(20 * time.Millisecond)
				}
				if code, exit := st(p); exit {
					return code
				}
			}
			return 0
		}, nil
	}
	prog, rest, _ := strings.Cut(trimmed, " ")
	var args []string
	if rest != "" {
		args = []string{rest}
	}
	return h.program(req, strings.ToLower(prog), args)
}

// program runs a program by name with its arguments (joined back into one
// command line: the captures pass PowerShell scripts as one argument).
func (h *testHost) program(req CommandRequest, prog string, args []string) (script, error) {
	rest := strings.Join(args, " ")
	switch prog {
	case "powershell.exe", "powershell":
		return h.powershell(req, rest)
	case "testcmd.exe":
		return h.testcmd(req, strings.Fields(rest))
	}
	return nil, h.unknown(prog + " " + rest)
}

// setOutput is `set`: a small Windows environment, the shell's variables,
// and the profile-dependent ones (WINRS_NOPROFILE).
func (h *testHost) setOutput(req CommandRequest) string {
	profile := `C:\Users\` + req.User
	temp := profile + `\AppData\Local\Temp`
	if req.NoProfile {
		profile, temp = `C:\Users\Default`, `C:\Windows\TEMP`
	}
	vars := map[string]string{
		"ALLUSERSPROFILE": `C:\ProgramData`,
		"COMPUTERNAME":    "WINBAKE",
		"ComSpec":         `C:\Windows\system32\cmd.exe`,
		"OS":              "Windows_NT",
		"SystemRoot":      `C:\Windows`,
		"TEMP":            temp,
		"TMP":             temp,
		"USERNAME":        req.User,
		"USERPROFILE":     profile,
	}
	for k, v := range req.Environment {
		vars[k] = v
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToUpper(names[i]) < strings.ToUpper(names[j]) })
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + "=" + vars[k] + "\r\n")
	}
	return b.String()
}

const progressPrefix = "$ProgressPreference = 'SilentlyContinue';"

func (h *testHost) powershell(req CommandRequest, rest string) (script, error) {
	rest = strings.TrimSpace(rest)
	if enc, ok := strings.CutPrefix(rest, "-EncodedCommand "); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil || len(raw)%2 != 0 {
			return nil, h.unknown("powershell.exe " + rest)
		}
		u := make([]uint16, len(raw)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		src := strings.TrimPrefix(string(utf16.Decode(u)), progressPrefix)
		return h.psScript(req, src)
	}
	if rest == "-" {
		// The script arrives on stdin (test_winrs_send.yml).
		return func(p *testProc) uint32 {
			src, err := io.ReadAll(p.stdinR)
			if err != nil {
				return statusControlCExit
			}
			run, serr := h.psScript(req, string(src))
			if serr != nil {
				return 1
			}
			return run(p)
		}, nil
	}
	return h.psScript(req, rest)
}

// psScript interprets the few PowerShell statements the tests use.
func (h *testHost) psScript(req CommandRequest, src string) (script, error) {
	var steps []func(p *testProc) (uint32, bool)
	for _, st := range strings.Split(src, ";") {
		st = strings.TrimSpace(st)
		if st == "" {
			continue
		}
		cmd, arg, _ := strings.Cut(st, " ")
		switch strings.ToLower(cmd) {
		case "write-host":
			text := strings.Trim(arg, `"'`)
			if req.Codepage != 65001 && strings.IndexFunc(text, func(r rune) bool { return r > 127 }) >= 0 {
				h.t.Errorf("test host: non-ASCII Write-Host under code page %d", req.Codepage)
			}
			first, more, _ := strings.Cut(text, " ")
			steps = append(steps, func(p *testProc) (uint32, bool) {
				// Write-Host ends lines with \n, often a write of its own.
				p.write(streamStdout, first)
				if more != "" {
					p.write(streamStdout, " "+more+"\n")
				} else {
					p.write(streamStdout, "\n")
				}
				return 0, false
			})
		case "write-output":
			text := strings.Trim(arg, `"'`)
			steps = append(steps, func(p *testProc) (uint32, bool) { p.write(streamStdout, text+"\r\n"); return 0, false })
		case "start-sleep":
			n, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
			if err != nil {
				return nil, h.unknown(st)
			}
			d := time.Duration(n * float64(h.sleepUnit))
			steps = append(steps, func(p *testProc) (uint32, bool) {
				if !p.sleep(d) {
					return statusControlCExit, true
				}
				return 0, false
			})
		case "(pwd).path":
			dir := req.WorkingDirectory
			if dir == "" {
				dir = `C:\Users\` + req.User
			}
			steps = append(steps, func(p *testProc) (uint32, bool) {
				p.write(streamStdout, dir)
				p.write(streamStdout, "\r\n")
				return 0, false
			})
		case "exit":
			code, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 32)
			if err != nil {
				return nil, h.unknown(st)
			}
			steps = append(steps, func(p *testProc) (uint32, bool) { return uint32(code), true })
		default:
			return nil, h.unknown("PowerShell: " + st)
		}
	}
	return func(p *testProc) uint32 {
		for _, st := range steps {
			if code, exit := st(p); exit {
				return code
			}
		}
		return 0
	}, nil
}

// testData is the deterministic content `testcmd.exe emit` writes.
func testData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// testcmd implements the test-only program testcmd.exe.
func (h *testHost) testcmd(req CommandRequest, args []string) (script, error) {
	bad := func() (script, error) { return nil, h.unknown("testcmd.exe " + strings.Join(args, " ")) }
	if len(args) == 0 {
		return bad()
	}
	num := func(i int) (uint64, bool) {
		if i >= len(args) {
			return 0, false
		}
		n, err := strconv.ParseUint(args[i], 10, 64)
		return n, err == nil
	}
	switch args[0] {
	case "emit": // emit stdout|stderr|both N SEED: N bytes in random-size writes
		n, ok1 := num(2)
		seed, ok2 := num(3)
		if !ok1 || !ok2 || len(args) != 4 {
			return bad()
		}
		which := args[1]
		return func(p *testProc) uint32 {
			rng := rand.New(rand.NewSource(int64(seed) + 1))
			for i, stream := range []int{streamStdout, streamStderr} {
				if which != "both" && which != streamNames[stream] {
					continue
				}
				data := testData(int(n), int64(seed)+int64(i))
				for len(data) > 0 {
					k := 1 + rng.Intn(20000)
					if k > len(data) {
						k = len(data)
					}
					if !p.writeBytes(stream, data[:k]) {
						return statusControlCExit
					}
					data = data[k:]
				}
			}
			return 0
		}, nil
	case "exit": // exit CODE
		code, ok := num(1)
		if !ok || code > 0xFFFFFFFF {
			return bad()
		}
		return func(p *testProc) uint32 { return uint32(code) }, nil
	case "sleep": // sleep MS CODE TEXT: wait, print TEXT\r\n, exit CODE
		ms, ok1 := num(1)
		code, ok2 := num(2)
		if !ok1 || !ok2 || len(args) != 4 {
			return bad()
		}
		return func(p *testProc) uint32 {
			if !p.sleep(time.Duration(ms) * time.Millisecond) {
				return statusControlCExit
			}
			p.write(streamStdout, args[3]+"\r\n")
			return uint32(code)
		}, nil
	case "trickle": // trickle TEXT MS: print TEXT, then run until terminated
		if len(args) != 2 {
			return bad()
		}
		return func(p *testProc) uint32 {
			p.write(streamStdout, args[1])
			p.sleep(time.Hour)
			return statusControlCExit
		}, nil
	case "interleave": // interleave N: out<i> and err<i> lines, alternating
		n, ok := num(1)
		if !ok {
			return bad()
		}
		return func(p *testProc) uint32 {
			for i := 0; i < int(n); i++ {
				p.write(streamStdout, fmt.Sprintf("out%d\r\n", i))
				p.pause(30 * time.Millisecond)
				p.write(streamStderr, fmt.Sprintf("err%d\r\n", i))
				p.pause(30 * time.Millisecond)
			}
			return 0
		}, nil
	case "unicode": // unicode: multi-byte UTF-8 text
		return func(p *testProc) uint32 {
			p.write(streamStdout, "こんにちは, grüße €😀\r\n")
			return 0
		}, nil
	case "cat": // cat: stdin to stdout
		return func(p *testProc) uint32 {
			buf := make([]byte, 32<<10)
			for {
				n, err := p.stdinR.Read(buf)
				if n > 0 && !p.writeBytes(streamStdout, buf[:n]) {
					return statusControlCExit
				}
				if errors.Is(err, io.EOF) {
					return 0
				}
				if err != nil {
					return statusControlCExit
				}
			}
		}, nil
	case "hang": // hang: run until terminated
		return func(p *testProc) uint32 {
			p.sleep(time.Hour)
			return statusControlCExit
		}, nil
	case "fault": // fault CODE: the Host refuses the command
		code, ok := num(1)
		if !ok {
			return bad()
		}
		return nil, &CommandFault{Code: uint32(code), Message: "Access is denied."}
	case "broken": // broken: a Host error that is not a CommandFault
		return nil, errors.New("test host: broken on purpose")
	}
	return bad()
}

// testProc is a Process whose streams are synchronous pipes, so each write
// reaches the server as one read.
type testProc struct {
	stdinR *io.PipeReader
	stdinW *io.PipeWriter
	outR   [2]*io.PipeReader
	outW   [2]*io.PipeWriter

	term     chan struct{}
	termOnce sync.Once
	done     chan struct{}
	code     uint32
}

func newTestProc() *testProc {
	p := &testProc{term: make(chan struct{}), done: make(chan struct{})}
	p.stdinR, p.stdinW = io.Pipe()
	for i := range p.outR {
		p.outR[i], p.outW[i] = io.Pipe()
	}
	return p
}

func (p *testProc) Stdin() io.WriteCloser { return p.stdinW }
func (p *testProc) Stdout() io.Reader     { return p.outR[streamStdout] }
func (p *testProc) Stderr() io.Reader     { return p.outR[streamStderr] }

func (p *testProc) Wait() uint32 {
	<-p.done
	return p.code
}

func (p *testProc) Terminate() {
	p.termOnce.Do(func() {
		close(p.term)
		_ = p.stdinR.CloseWithError(errors.New("terminated"))
	})
}

func (p *testProc) terminated() bool {
	select {
	case <-p.term:
		return true
	default:
		return false
	}
}

func (p *testProc) write(stream int, s string) bool { return p.writeBytes(stream, []byte(s)) }

func (p *testProc) writeBytes(stream int, b []byte) bool {
	if p.terminated() {
		return false
	}
	_, err := p.outW[stream].Write(b)
	return err == nil
}

// sleep waits d; false when terminated first.
func (p *testProc) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.term:
		return false
	}
}

func (p *testProc) pause(d time.Duration) { p.sleep(d) }

func (p *testProc) finish(code uint32) {
	if p.terminated() && code == 0 {
		code = statusControlCExit
	}
	p.code = code
	_ = p.stdinR.CloseWithError(io.ErrClosedPipe)
	close(p.done)
	for _, w := range p.outW {
		_ = w.Close()
	}
}
