package winsim

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// ExitTerminated is the exit code of a process ended by Terminate
// (STATUS_CONTROL_C_EXIT).
const ExitTerminated uint32 = 0xC000013A

// maxCreateProcessLine is CreateProcess's command-line limit; WinRM faults
// a longer Command with 0x800700CE.
const maxCreateProcessLine = 32767

type logonKind int

const (
	// logonNetwork is a WinRM process: wusa.exe refuses to install.
	logonNetwork logonKind = iota
	logonInteractive
)

// proc is the context of one running simulated program.
type proc struct {
	m        *Machine
	ctx      context.Context
	user     string
	logon    logonKind
	env      *envBlock
	files    *Files // relative paths resolve against the working directory
	codepage int
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	image    string   // the program's path, as found
	cmdline  string   // the command line after the program name
	args     []string // cmdline split by CommandLineToArgvW rules
}

func (p *proc) cwd() string { return p.files.cwd }

// child is a new process started by p, inheriting its environment and
// working directory.
func (p *proc) child(stdout, stderr io.Writer) *proc {
	c := *p
	c.env = p.env.clone()
	c.files = p.files.withCwd(p.files.cwd)
	c.stdout, c.stderr = stdout, stderr
	return &c
}

// encode turns text into the bytes the process writes with its console
// code page: 65001 is UTF-8, anything else the OEM code page 437.
func (p *proc) encode(s string) []byte {
	if p.codepage == 65001 {
		return []byte(s)
	}
	var b []byte
	for _, r := range s {
		if r < utf8.RuneSelf {
			b = append(b, byte(r))
		} else if c, ok := charmap.CodePage437.EncodeRune(r); ok {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	return b
}

// print writes s to the process's output; like a console program whose
// stdout was closed, the process goes on when that fails.
func (p *proc) print(w io.Writer, s string) { _, _ = w.Write(p.encode(s)) }

// builtinPrograms are the programs the simulated Windows can run; each
// has a file at its path in a fresh install.
var builtinPrograms = []string{
	`C:\Windows\System32\cmd.exe`,
	`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
	`C:\Windows\System32\dism.exe`,
	`C:\Windows\System32\wusa.exe`,
	`C:\Windows\System32\expand.exe`,
	`C:\Windows\System32\shutdown.exe`,
	`C:\Windows\System32\HOSTNAME.EXE`,
	`C:\Windows\System32\NETSTAT.EXE`,
	`C:\Windows\System32\Sysprep\sysprep.exe`,
	winrmCmdPath,
	netshPath,
	certutilPath,
}

const agentExe = "winbake-agent.exe"

// isAgentPath reports whether abs is where winbake installs or ships its
// agent: C:\ProgramData\winbake\ or the root of a drive.
func isAgentPath(abs string) bool {
	wp, err := parseWinPath(abs, "")
	if err != nil || !strings.EqualFold(wp.base(), agentExe) {
		return false
	}
	dir := wp.parent()
	return len(dir.parts) == 0 || dir.equal(winPath{drive: 'C', parts: []string{"ProgramData", "winbake"}})
}

// programAt returns how to run the program file at abs, or nil.
func (m *Machine) programAt(abs string) func(p *proc) uint32 {
	switch strings.ToLower(abs) {
	case `c:\windows\system32\cmd.exe`:
		return m.runCmd
	case `c:\windows\system32\windowspowershell\v1.0\powershell.exe`:
		return m.runPowerShell
	case `c:\windows\system32\dism.exe`:
		return m.runDISM
	case `c:\windows\system32\wusa.exe`:
		return m.runWUSA
	case `c:\windows\system32\expand.exe`:
		return m.runExpand
	case `c:\windows\system32\shutdown.exe`:
		return m.runShutdown
	case `c:\windows\system32\hostname.exe`:
		return m.runHostname
	case `c:\windows\system32\netstat.exe`:
		return m.runNetstat
	case `c:\windows\system32\sysprep\sysprep.exe`:
		return m.runSysprep
	case `c:\windows\system32\net.exe`:
		return m.runNet
	case `c:\windows\system32\reg.exe`:
		return m.runReg
	case `c:\windows\system32\winrm.cmd`:
		return m.runWinrmCmd
	case `c:\windows\system32\netsh.exe`:
		return m.runNetsh
	case `c:\windows\system32\certutil.exe`:
		return m.runCertutil
	}
	if run := m.sysprepProgram(abs); run != nil {
		return run
	}
	if isAgentPath(abs) {
		return m.runAgent
	}
	return nil
}

// programSearch is where a program name without a path is looked for.
type programSearch int

const (
	// searchNone: the name is a path (CreateProcess's lpApplicationName).
	searchNone programSearch = iota
	// searchCmd: the working directory, then PATH (cmd.exe).
	searchCmd
	// searchPath: PATH only (PowerShell, Go's exec.LookPath).
	searchPath
)

// findProgram looks name up: a name with a path is taken as is, a bare
// name is searched as search says; without an extension, the PATHEXT
// extensions are tried. It returns the absolute path of the file found,
// or "".
func (p *proc) findProgram(name string, search programSearch) string {
	name = strings.Trim(name, `"`)
	if name == "" {
		return ""
	}
	exts := []string{""}
	if path.Ext(strings.ReplaceAll(name, `\`, "/")) == "" {
		pe, _ := p.env.get("PATHEXT")
		for _, e := range strings.Split(pe, ";") {
			if e != "" {
				exts = append(exts, e)
			}
		}
	}
	try := func(n string) string {
		for _, e := range exts {
			if ok, dir := p.files.exists(n + e); ok && !dir {
				abs, _ := p.files.Abs(n + e)
				return abs
			}
		}
		return ""
	}
	if strings.ContainsAny(name, `\/:`) || search == searchNone {
		return try(name)
	}
	if search == searchCmd {
		if abs := try(name); abs != "" {
			return abs
		}
	}
	pathVar, _ := p.env.get("Path")
	for _, dir := range strings.Split(pathVar, ";") {
		if dir == "" {
			continue
		}
		if abs := try(strings.TrimSuffix(dir, `\`) + `\` + name); abs != "" {
			return abs
		}
	}
	return ""
}

// exec runs the program file abs with the command line tail cmdline.
// ok is false when the file is not a program the stand-in can run.
func (p *proc) exec(abs, cmdline string) (code uint32, ok bool) {
	run := p.m.programAt(abs)
	if run == nil {
		return 0, false
	}
	c := *p
	c.image = abs
	c.cmdline = cmdline
	c.args = splitArgs(cmdline)
	p.m.logf("%s: %s %s", p.user, abs, cmdline)
	return run(&c), true
}

// runAgent runs winbake-agent.exe in-process.
func (m *Machine) runAgent(p *proc) uint32 {
	if m.opts.Agent == nil {
		m.unsupportedf("%s was started but Options.Agent is nil", p.image)
		p.print(p.stderr, "The system cannot execute the specified program.\r\n")
		return 1
	}
	sys := &system{m: m, logon: p.logon, user: p.user}
	return m.opts.Agent(p.ctx, sys, p.args, p.stdin, p.stdout, p.stderr)
}

// runHostname is hostname.exe.
func (m *Machine) runHostname(p *proc) uint32 {
	if len(p.args) > 0 {
		m.unsupportedf("hostname.exe with arguments %q", p.args)
		p.print(p.stderr, "sethostname: Use the Network Control Panel Applet to set hostname.\r\n")
		return 1
	}
	p.print(p.stdout, m.ComputerName()+"\r\n")
	return 0
}

// process is a running command: the wsman.Process the Host returns.
type process struct {
	stdin      *stream
	out        *output // stdout and stderr in the order written
	done       chan struct{}
	code       uint32
	cancel     context.CancelFunc
	terminated bool
	mu         sync.Mutex
}

func (pr *process) Stdin() io.WriteCloser { return pr.stdin }
func (pr *process) Stdout() io.Reader     { return pr.out.reader(wsman.StreamStdout) }
func (pr *process) Stderr() io.Reader     { return pr.out.reader(wsman.StreamStderr) }

// ReadOutput is wsman.OrderedOutput: stdout and stderr in the order the
// program wrote them (cmd's `echo out && echo err>&2` arrives as written).
func (pr *process) ReadOutput(p []byte) (int, int, error) { return pr.out.ReadOutput(p) }

var _ wsman.OrderedOutput = (*process)(nil)

func (pr *process) Wait() uint32 {
	<-pr.done
	return pr.code
}

func (pr *process) Terminate() {
	pr.mu.Lock()
	pr.terminated = true
	pr.mu.Unlock()
	pr.cancel()
	pr.stdin.discard()
}

// spawn runs body as a process with streaming output.
func (m *Machine) spawn(base *proc, body func(p *proc) uint32) *process {
	ctx, cancel := context.WithCancel(base.ctx)
	untrack := m.track(cancel)
	pr := &process{stdin: newStream(), out: newOutput(), done: make(chan struct{}), cancel: cancel}
	p := *base
	p.ctx = ctx
	p.stdin, p.stdout, p.stderr = pr.stdin, pr.out.writer(wsman.StreamStdout), pr.out.writer(wsman.StreamStderr)
	m.running.Add(1)
	go func() {
		defer m.running.Done()
		defer untrack()
		code := body(&p)
		pr.mu.Lock()
		if pr.terminated {
			code = ExitTerminated
		}
		pr.code = code
		pr.mu.Unlock()
		cancel()
		pr.out.Close()
		pr.stdin.discard()
		close(pr.done)
	}()
	return pr
}

// Start runs a WinRM command (wsman.Host): `cmd.exe /c <line>` or, with
// WINRS_SKIP_CMD_SHELL, the program itself, which must then be given by a
// path (CreateProcess does not search PATH for it). The process lives
// until it exits, is terminated, or the machine shuts down; ctx only
// carries values.
func (m *Machine) Start(ctx context.Context, req wsman.CommandRequest) (wsman.Process, error) {
	if !m.power.serving() {
		return nil, &wsman.CommandFault{Code: ErrorShutdownInProgress.HRESULT(), Message: ErrorShutdownInProgress.Error()}
	}
	line := req.Command
	for _, a := range req.Arguments {
		line += " " + a
	}
	if strings.TrimSpace(line) == "" {
		return nil, &wsman.CommandFault{Code: uint32(ErrorInvalidParameter), Message: ErrorInvalidParameter.Error()}
	}
	user, known := m.userExists(req.User)
	if !known {
		m.unsupportedf("command from user %q, who is not one of Options.Users %q", req.User, m.opts.Users)
		return nil, &wsman.CommandFault{Code: ErrorAccessDenied.HRESULT(), Message: ErrorAccessDenied.Error()}
	}
	if !req.NoProfile {
		if err := m.logon(user); err != nil {
			return nil, err
		}
	}
	env := m.environment(user, req.NoProfile)
	for k, v := range req.Environment {
		env.set(k, v)
	}
	cwd, _ := env.get("USERPROFILE")
	if req.WorkingDirectory != "" {
		abs, err := m.files.Abs(req.WorkingDirectory)
		if ok, dir := m.files.exists(req.WorkingDirectory); err != nil || !ok || !dir {
			return nil, &wsman.CommandFault{Code: ErrorDirectory.HRESULT(), Message: ErrorDirectory.Error()}
		}
		cwd = abs
	}
	codepage := req.Codepage
	if codepage == 0 {
		codepage = 437
	}
	base := &proc{
		m:        m,
		ctx:      context.WithoutCancel(ctx),
		user:     user,
		logon:    logonNetwork,
		env:      env,
		files:    m.files.withCwd(cwd),
		codepage: codepage,
	}
	var image, tail string
	if req.SkipCmdShell {
		prog, rest := splitProgram(line)
		image = base.findProgram(prog, searchNone)
		if image == "" || m.programAt(image) == nil {
			if image != "" {
				m.unsupportedf("WinRM command runs %s, a program the stand-in cannot run", image)
			}
			return nil, &wsman.CommandFault{Code: ErrorFileNotFound.HRESULT(), Message: ErrorFileNotFound.Error()}
		}
		tail = rest
		if len(line) > maxCreateProcessLine {
			return nil, &wsman.CommandFault{Code: 0x800700CE, Message: "The filename or extension is too long."}
		}
	} else {
		image = `C:\Windows\System32\cmd.exe`
		tail = "/c " + line
		if len(`C:\Windows\system32\cmd.exe /c `+line) > maxCreateProcessLine {
			return nil, &wsman.CommandFault{Code: 0x800700CE, Message: "The filename or extension is too long."}
		}
	}
	m.logf("WinRM command from %s: %s", user, line)
	return m.spawn(base, func(p *proc) uint32 {
		code, _ := p.exec(image, tail)
		return code
	}), nil
}

// system is an agent.System view of the machine for one logon.
type system struct {
	m     *Machine
	logon logonKind
	user  string
}

func (m *Machine) system(l logonKind) *system { return &system{m: m, logon: l, user: m.opts.Users[0]} }

func (s *system) Registry() agent.Registry   { return s.m.RegistryFor(s.user) }
func (s *system) Processes() agent.Processes { return processes{s} }
func (s *system) Power() agent.Power         { return power{s.m} }
func (s *system) Files() agent.Files         { return s.m.files }

type processes struct{ s *system }

// Running knows one process, the servicing worker (PowerOptions.
// ServicingWorkerTime); asking for any other is reported as a gap.
func (r processes) Running(image string) (bool, error) {
	if !strings.EqualFold(image, agent.ServicingWorker) {
		r.s.m.unsupportedf("agent asks whether %s runs; the stand-in only tracks %s", image, agent.ServicingWorker)
		return false, fmt.Errorf("the stand-in does not track process %s", image)
	}
	return r.s.m.power.servicingWorkerRunning(), nil
}

// Run runs a simulated program. path is a full path, or a bare name
// looked up in PATH as exec.LookPath does (not in the working directory); the arguments are passed as
// Go's os/exec passes them on Windows. A program that does not exist is an
// error; an existing file the stand-in cannot run is reported (Failf) and
// an error.
func (r processes) Run(ctx context.Context, path string, args []string, stdout, stderr io.Writer) (uint32, error) {
	m := r.s.m
	if !m.power.serving() {
		return 1, fmt.Errorf("%s: %w", path, ErrorShutdownInProgress)
	}
	env := m.environment(r.s.user, false)
	cwd, _ := env.get("USERPROFILE")
	p := &proc{m: m, ctx: ctx, user: r.s.user, logon: r.s.logon, env: env, files: m.files.withCwd(cwd), codepage: 65001, stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}
	if stdout == nil {
		p.stdout = io.Discard
	}
	if stderr == nil {
		p.stderr = io.Discard
	}
	abs := p.findProgram(path, searchPath)
	if abs == "" {
		return 1, fmt.Errorf("exec: %q: %w", path, ErrorFileNotFound)
	}
	if m.programAt(abs) == nil {
		m.unsupportedf("agent runs %s, a program the stand-in cannot run", abs)
		return 1, fmt.Errorf("exec: %q: the stand-in cannot run it", abs)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	untrack := m.track(cancel)
	defer untrack()
	p.ctx = pctx
	code, _ := p.exec(abs, joinArgs(args))
	if err := pctx.Err(); err != nil {
		return 1, err
	}
	return code, nil
}
