package wsman

import (
	"context"
	"fmt"
	"io"
)

// CommandRequest is a WinRM Command request as the cmd shell plugin
// (winrscmd.dll) receives it, with the options of its shell.
type CommandRequest struct {
	ShellID string
	// Command and Arguments are rsp:Command and the rsp:Arguments, in order.
	Command   string
	Arguments []string
	// SkipCmdShell is WINRS_SKIP_CMD_SHELL: run the program directly
	// instead of through `cmd.exe /c`.
	SkipCmdShell bool
	// Codepage is WINRS_CODEPAGE of the shell; 0 when not given (the OEM
	// code page, 437).
	Codepage int
	// NoProfile is WINRS_NOPROFILE of the shell.
	NoProfile bool
	// WorkingDirectory and Environment come from the Create request's
	// rsp:WorkingDirectory and rsp:Environment.
	WorkingDirectory string
	Environment      map[string]string
	// User is the authenticated user name.
	User string
}

// Process is a command the Host started.
type Process interface {
	// Stdin receives the bytes of Send requests; it is closed after a Send
	// with End="true".
	Stdin() io.WriteCloser
	// Stdout and Stderr yield output as the process writes it and reach
	// EOF once it has exited.
	Stdout() io.Reader
	Stderr() io.Reader
	// Wait blocks until the process has exited and returns its exit code
	// as the DWORD Windows reports (0x80240017 is 2149842967).
	Wait() uint32
	// Terminate ends the process, as Signal terminate or ctrl_c does.
	Terminate()
}

// Output streams of a Process, as OrderedOutput names them.
const (
	StreamStdout = 0
	StreamStderr = 1
)

// OrderedOutput is an optional interface of a Process (an additive part
// of this contract). Output read from Stdout and Stderr by two goroutines
// loses its order across the two streams: a process that writes a line to
// stdout and then one to stderr may have them received the other way
// round, which a Windows pipe reader does not do for writes that far
// apart. A Process that knows the order of its writes (an in-memory one)
// implements ReadOutput, and the server then reads its output only
// through it, never through Stdout and Stderr.
type OrderedOutput interface {
	// ReadOutput reads the next output, in the order it was written, into
	// p: stream is StreamStdout or StreamStderr, and one read never
	// returns bytes of both. It blocks until output exists, and returns
	// io.EOF once the process has exited and everything was read.
	ReadOutput(p []byte) (stream int, n int, err error)
}

// Host runs commands: the simulated Windows behind the server.
type Host interface {
	// Start starts the command. A *CommandFault error becomes the SOAP fault
	// Windows answers the Command request with; any other error fails the
	// request with an internal error and is reported to the test.
	Start(ctx context.Context, req CommandRequest) (Process, error)
}

// CommandFault is a failure Windows reports as a fault on the Command
// request itself, e.g. Code 2147942402 "The system cannot find the file
// specified." for a missing program under WINRS_SKIP_CMD_SHELL.
type CommandFault struct {
	Code    uint32
	Message string
}

func (f *CommandFault) Error() string {
	return fmt.Sprintf("WinRM command fault %d: %s", f.Code, f.Message)
}

// ListenerState is what the WinRM listener does, following the machine's
// power state.
type ListenerState int

const (
	// ListenerUp serves requests.
	ListenerUp ListenerState = iota
	// ListenerDropFIN closes every open connection with FIN, in-flight
	// requests included (a pending Receive ends in EOF), and refuses new
	// connections: Windows stopping WinRM on the way down.
	ListenerDropFIN
	// ListenerDropRST does the same with RST (SO_LINGER 0).
	ListenerDropRST
	// ListenerRefused refuses connections: the machine is off or booting.
	ListenerRefused
	// ListenerBlackhole accepts connections and never answers.
	ListenerBlackhole
	// ListenerUnavailable answers every request with HTTP.sys's 503
	// text/html page: booting, WinRM not yet started.
	ListenerUnavailable
)

// PowerControl is how the simulated machine drives the listener through
// shutdowns and boots.
type PowerControl interface {
	SetListenerState(ListenerState)
	// DiscardShells forgets every shell and command, as a reboot does;
	// later requests naming them get the InvalidSelectors fault.
	DiscardShells()
}

// CreateFaulter is an optional interface of a Host (an additive part of
// this contract): before it creates a shell the server asks whether Windows
// would fail the Create request now, e.g. Code 2147943418 (0x800703FA)
// "Illegal operation attempted on a registry key that has been marked for
// deletion." early in boot. A non-nil fault is answered as the shell
// plugin's w:InternalError fault and no shell is created.
type CreateFaulter interface {
	CreateFault() *CommandFault
}
