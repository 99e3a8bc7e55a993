//go:build windows

package windowssys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

// New returns the running Windows as an agent.System.
func New() agent.System { return system{} }

type system struct{}

func (system) Registry() agent.Registry   { return reg{} }
func (system) Processes() agent.Processes { return processes{} }
func (system) Power() agent.Power         { return power{} }
func (system) Files() agent.Files         { return files{} }

// --- registry ---

var hives = map[string]registry.Key{
	"HKLM": registry.LOCAL_MACHINE,
	"HKCU": registry.CURRENT_USER,
	"HKU":  registry.USERS,
	"HKCR": registry.CLASSES_ROOT,
	"HKCC": registry.CURRENT_CONFIG,
}

type reg struct{}

// open opens a key in the 64-bit view (the servicing keys live there; a
// 32-bit build would otherwise be redirected to WOW6432Node).
func open(key string, access uint32) (registry.Key, error) {
	hive, path, err := splitKey(key)
	if err != nil {
		return 0, err
	}
	return registry.OpenKey(hives[hive], path, access|registry.WOW64_64KEY)
}

func notExist(err error) bool { return errors.Is(err, registry.ErrNotExist) }

func (reg) KeyExists(key string) (bool, error) {
	k, err := open(key, registry.QUERY_VALUE)
	if notExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", key, err)
	}
	k.Close()
	return true, nil
}

func (reg) SubKeys(key string) ([]string, error) {
	k, err := open(key, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", key, err)
	}
	defer k.Close()
	return k.ReadSubKeyNames(-1)
}

func (reg) ValueNames(key string) ([]string, error) {
	k, err := open(key, registry.QUERY_VALUE)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", key, err)
	}
	defer k.Close()
	return k.ReadValueNames(-1)
}

func (reg) String(key, name string) (string, bool, error) {
	k, err := open(key, registry.QUERY_VALUE)
	if notExist(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("opening %s: %w", key, err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue(name)
	if notExist(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s %s: %w", key, name, err)
	}
	return v, true, nil
}

func (reg) DWORD(key, name string) (uint32, bool, error) {
	k, err := open(key, registry.QUERY_VALUE)
	if notExist(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("opening %s: %w", key, err)
	}
	defer k.Close()
	v, typ, err := k.GetIntegerValue(name)
	if notExist(err) {
		return 0, false, nil
	}
	if err == nil && typ != registry.DWORD {
		err = registry.ErrUnexpectedType
	}
	if err != nil {
		return 0, false, fmt.Errorf("%s %s: %w", key, name, err)
	}
	return uint32(v), true, nil
}

func create(key string) (registry.Key, error) {
	hive, path, err := splitKey(key)
	if err != nil {
		return 0, err
	}
	k, _, err := registry.CreateKey(hives[hive], path, registry.SET_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", key, err)
	}
	return k, nil
}

func (reg) SetString(key, name, value string) error {
	k, err := create(key)
	if err != nil {
		return err
	}
	defer k.Close()
	return k.SetStringValue(name, value)
}

func (reg) SetDWORD(key, name string, value uint32) error {
	k, err := create(key)
	if err != nil {
		return err
	}
	defer k.Close()
	return k.SetDWordValue(name, value)
}

func (reg) DeleteValue(key, name string) error {
	k, err := open(key, registry.SET_VALUE)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", key, err)
	}
	defer k.Close()
	if err := k.DeleteValue(name); err != nil && !notExist(err) {
		return fmt.Errorf("%s %s: %w", key, name, err)
	}
	return nil
}

// --- processes ---

type processes struct{}

// Run runs the program directly (no cmd.exe), with standard input from NUL.
// The exit code is the DWORD from GetExitCodeProcess, taken from
// syscall.WaitStatus rather than ProcessState.ExitCode(), which is an int.
// When ctx ends the program is killed; its exit code (1, from
// TerminateProcess) is returned and the caller checks ctx.
func (processes) Run(ctx context.Context, path string, args []string, stdout, stderr io.Writer) (uint32, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 10 * time.Second // do not hang on output pipes a grandchild keeps open
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return 0, fmt.Errorf("running %s: %w", path, err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		return ws.ExitCode, nil
	}
	return uint32(cmd.ProcessState.ExitCode()), nil
}

// Running walks a Toolhelp snapshot of the processes.
func (processes) Running(image string) (bool, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return false, fmt.Errorf("listing processes: %w", err)
	}
	defer windows.CloseHandle(snap)
	entry := windows.ProcessEntry32{Size: uint32(unsafe.Sizeof(windows.ProcessEntry32{}))}
	for err = windows.Process32First(snap, &entry); err == nil; err = windows.Process32Next(snap, &entry) {
		if strings.EqualFold(windows.UTF16ToString(entry.ExeFile[:]), image) {
			return true, nil
		}
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return false, fmt.Errorf("listing processes: %w", err)
	}
	return false, nil
}

// --- power ---

type power struct{}

// systemTimeOfDayInformation is SYSTEM_TIMEOFDAY_INFORMATION.
type systemTimeOfDayInformation struct {
	BootTime      int64
	CurrentTime   int64
	TimeZoneBias  int64
	TimeZoneID    uint32
	Reserved      uint32
	BootTimeBias  uint64
	SleepTimeBias uint64
}

var procGetTickCount64 = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetTickCount64")

// BootTime is the kernel's boot time (what WMI reports as LastBootUpTime),
// from NtQuerySystemInformation(SystemTimeOfDayInformation): a fixed value,
// unlike now minus GetTickCount64, which jitters between calls. The latter
// is the fallback, rounded to the second.
func (power) BootTime() (time.Time, error) {
	var info systemTimeOfDayInformation
	var n uint32
	err := windows.NtQuerySystemInformation(windows.SystemTimeOfDayInformation,
		unsafe.Pointer(&info), uint32(unsafe.Sizeof(info)), &n)
	if err == nil && info.BootTime > 0 {
		return fileTimeToTime(info.BootTime), nil
	}
	if perr := procGetTickCount64.Find(); perr != nil {
		return time.Time{}, fmt.Errorf("NtQuerySystemInformation: %v; GetTickCount64: %v", err, perr)
	}
	ms, _, _ := procGetTickCount64.Call()
	return time.Now().Add(-time.Duration(ms) * time.Millisecond).UTC().Round(time.Second), nil
}

func (power) Restart(delay time.Duration, reason string) error {
	return runShutdown(shutdownArgs(true, delay, reason))
}

func (power) PowerOff(delay time.Duration, reason string) error {
	return runShutdown(shutdownArgs(false, delay, reason))
}

func runShutdown(args []string) error {
	root := os.Getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	var out bytes.Buffer
	code, err := processes{}.Run(context.Background(), filepath.Join(root, "System32", "shutdown.exe"), args, &out, &out)
	if err != nil {
		return err
	}
	return shutdownError(args, code, out.String())
}

// --- files ---

type files struct{}

func (files) Stat(path string) (fs.FileInfo, error)      { return os.Stat(path) }
func (files) Open(path string) (io.ReadCloser, error)    { return os.Open(path) }
func (files) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }
func (files) MkdirAll(path string) error                 { return os.MkdirAll(path, 0o755) }
func (files) Remove(path string) error                   { return os.Remove(path) }

func (files) Create(path string) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

func (files) Append(path string) (io.WriteCloser, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}
