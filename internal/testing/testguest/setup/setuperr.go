package setup

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SetupErrPath is C:\Windows\Panther\setuperr.log as the simulated
// Windows (package winsim, whose C: drive is WinsimStateDir/fs/C on the
// installed Windows volume) serves it over WinRM.
//
// Windows Setup writes setuperr.log in Windows PE to X:\Windows\Panther
// (the RAM disk, gone at the restart) and, from the first boot of the
// installed system on, to C:\Windows\Panther. The stand-in does the same:
// errors of the passes run from disk (specialize, oobeSystem, the boot
// of the installed Windows) are appended here; windowsPE errors are not.
var SetupErrPath = filepath.Join(WinsimStateDir, "fs", "C", "Windows", "Panther", "setuperr.log")

// AppendSetupErr appends one line, in setuperr.log's format, to
// C:\Windows\Panther\setuperr.log on the installed Windows volume at root.
func AppendSetupErr(root, component, format string, args ...any) error {
	path := filepath.Join(root, SetupErrPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s, Error                 %-6s %s\r\n", time.Now().UTC().Format("2006-01-02 15:04:05"), component, fmt.Sprintf(format, args...))
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return syncAndClose(f)
}

// syncAndClose flushes f to its device and closes it, so what was written
// survives the power-off or restart that may follow at once.
func syncAndClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
