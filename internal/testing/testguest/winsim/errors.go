package winsim

import (
	"fmt"
	"io/fs"
)

// Errno is a Win32 error code. It matches fs.ErrNotExist, fs.ErrExist and
// fs.ErrPermission through errors.Is, so callers written for os errors
// work unchanged.
type Errno uint32

// Win32 error codes the simulated Windows reports.
const (
	ErrorFileNotFound         Errno = 2
	ErrorPathNotFound         Errno = 3
	ErrorAccessDenied         Errno = 5
	ErrorInvalidParameter     Errno = 87
	ErrorInvalidName          Errno = 123
	ErrorDirNotEmpty          Errno = 145
	ErrorAlreadyExists        Errno = 183
	ErrorFileExists           Errno = 80
	ErrorDirectory            Errno = 267
	ErrorShutdownInProgress   Errno = 1115
	ErrorNoShutdownInProgress Errno = 1116
	ErrorShutdownScheduled    Errno = 1190
	ErrorNoSuchUser           Errno = 1317
)

var errnoText = map[Errno]string{
	ErrorFileNotFound:         "The system cannot find the file specified.",
	ErrorPathNotFound:         "The system cannot find the path specified.",
	ErrorAccessDenied:         "Access is denied.",
	ErrorInvalidParameter:     "The parameter is incorrect.",
	ErrorInvalidName:          "The filename, directory name, or volume label syntax is incorrect.",
	ErrorDirNotEmpty:          "The directory is not empty.",
	ErrorAlreadyExists:        "Cannot create a file when that file already exists.",
	ErrorFileExists:           "The file exists.",
	ErrorDirectory:            "The directory name is invalid.",
	ErrorShutdownInProgress:   "A system shutdown is in progress.",
	ErrorNoShutdownInProgress: "Unable to abort the system shutdown because no shutdown was in progress.",
	ErrorShutdownScheduled:    "A system shutdown has already been scheduled.",
	ErrorNoSuchUser:           "The specified account does not exist.",
}

func (e Errno) Error() string {
	if s, ok := errnoText[e]; ok {
		return s
	}
	return fmt.Sprintf("Win32 error %d", uint32(e))
}

// HRESULT is the error as HRESULT_FROM_WIN32, the form WinRM faults and
// many tools report (2 is 0x80070002, 2147942402).
func (e Errno) HRESULT() uint32 { return 0x80070000 | uint32(e)&0xFFFF }

func (e Errno) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return e == ErrorFileNotFound || e == ErrorPathNotFound
	case fs.ErrExist:
		return e == ErrorAlreadyExists || e == ErrorFileExists
	case fs.ErrPermission:
		return e == ErrorAccessDenied
	}
	return false
}
