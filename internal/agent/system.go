// Package agent is winbake-agent: the guest-side half of winbake. The plugin
// runs it over WinRM (winbake-agent.exe <verb> ...) and reads one JSON
// document from its standard output, instead of sending PowerShell strings
// whose exit codes, output encoding and length limits vary.
//
// Every touch point with the operating system goes through System, so the
// same code runs on Windows (real APIs) and, in tests, on Linux against the
// simulated Windows of the stand-in guest.
package agent

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// System is the operating system as the agent sees it.
type System interface {
	Registry() Registry
	Processes() Processes
	Power() Power
	Files() Files
}

// Registry reads and writes the Windows registry. Key paths are full
// Windows paths with the hive first, e.g.
// `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`.
type Registry interface {
	// KeyExists reports whether the key exists.
	KeyExists(key string) (bool, error)
	// SubKeys lists the names of the key's direct subkeys.
	SubKeys(key string) ([]string, error)
	// ValueNames lists the names of the key's values.
	ValueNames(key string) ([]string, error)
	// String returns a REG_SZ or REG_EXPAND_SZ value; ok is false when the
	// key or value does not exist.
	String(key, name string) (value string, ok bool, err error)
	// DWORD returns a REG_DWORD value; ok is false when absent.
	DWORD(key, name string) (value uint32, ok bool, err error)
	SetString(key, name, value string) error
	SetDWORD(key, name string, value uint32) error
	// DeleteValue removes a value; no error when it is absent.
	DeleteValue(key, name string) error
}

// Processes runs programs (DISM, wusa, sysprep, shutdown, ...).
type Processes interface {
	// Run runs the program at path with args, writing its output to stdout
	// and stderr, and returns its exit code as the DWORD Windows reports
	// (0x800F081E is 2148468766, never negative). err is set only when the
	// program could not be run at all.
	Run(ctx context.Context, path string, args []string, stdout, stderr io.Writer) (exitCode uint32, err error)
	// Running reports whether a process with this image name (for
	// example "TiWorker.exe", compared without regard to case) is running.
	Running(image string) (bool, error)
}

// Power is the machine's power state.
type Power interface {
	// BootTime is when the running Windows booted (LastBootUpTime).
	BootTime() (time.Time, error)
	// Restart asks Windows to restart after delay, as `shutdown /r /t N`.
	Restart(delay time.Duration, reason string) error
	// PowerOff asks Windows to shut down and power off after delay.
	PowerOff(delay time.Duration, reason string) error
}

// Files is the file system, addressed with Windows paths (`C:\Windows\Temp\x.cab`).
type Files interface {
	Stat(path string) (fs.FileInfo, error)
	Open(path string) (io.ReadCloser, error)
	// Create creates or truncates a file, creating missing parent directories.
	Create(path string) (io.WriteCloser, error)
	// Append opens a file for appending, creating it when absent.
	Append(path string) (io.WriteCloser, error)
	ReadDir(path string) ([]fs.DirEntry, error)
	MkdirAll(path string) error
	Remove(path string) error
}
