package qemuvm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"
)

// PortReservation is a host port kept for one build: the port was free
// when reserved, and a lock file in Packer's cache (PACKER_CACHE_DIR/port/
// <port>, the file packer-plugin-sdk's net.ListenRangeConfig locks too)
// keeps other Packer builds off it until Release.
type PortReservation struct {
	Port int
	lock *os.File
	path string
}

// portLockDir is the directory of the port lock files.
func portLockDir() (string, error) {
	p, err := packersdk.CachePath("port", "0")
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

// ReservePort reserves a free TCP port on addr in [min, max): each port of
// the range is tried once, from a random start, and the error says how
// many were in use by other programs and how many reserved by other Packer
// builds. No lock file is left but the reserved port's.
func ReservePort(addr string, min, max int) (*PortReservation, error) {
	if min <= 0 || max <= min {
		return nil, fmt.Errorf("no port range: %d-%d", min, max-1)
	}
	dir, err := portLockDir()
	if err != nil {
		return nil, fmt.Errorf("the port lock directory in Packer's cache: %w", err)
	}
	n := max - min
	start := rand.IntN(n)
	var bound, locked int
	var example error
	for i := 0; i < n; i++ {
		port := min + (start+i)%n
		r, err := tryPort(addr, port, filepath.Join(dir, strconv.Itoa(port)))
		switch {
		case err == nil:
			return r, nil
		case errors.Is(err, errPortLocked):
			locked++
		case errors.As(err, new(*portInUseError)):
			bound++
			example = err.(*portInUseError).err
		default:
			return nil, err
		}
	}
	msg := fmt.Sprintf("every port of %s:%d-%d is taken: %d in use by other programs, %d reserved by other Packer builds (lock files in %s)",
		addr, min, max-1, bound, locked, dir)
	if example != nil {
		msg += fmt.Sprintf(" (%v)", example)
	}
	return nil, errors.New(msg)
}

var errPortLocked = errors.New("reserved by another Packer build")

// portInUseError is a port that could not be bound.
type portInUseError struct{ err error }

func (e *portInUseError) Error() string { return e.err.Error() }

// tryPort takes the lock file of port, then checks that the port can be
// bound. A port that cannot be bound gets its lock file removed again.
func tryPort(addr string, port int, path string) (*PortReservation, error) {
	f, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		unlockAndRemove(f, path)
		return nil, &portInUseError{err}
	}
	// The port is for QEMU to bind; the lock keeps it ours meanwhile.
	_ = l.Close()
	return &PortReservation{Port: port, lock: f, path: path}, nil
}

// lockFile opens and locks path (flock, as gofrs/flock in Packer's SDK
// does). A lock held elsewhere is errPortLocked. The file locked is the
// one at path: one removed meanwhile by its holder's release is opened
// again.
func lockFile(path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("port lock file: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, errPortLocked
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err2 != nil && !errors.Is(err2, os.ErrNotExist) {
			return nil, fmt.Errorf("port lock file: %w", err2)
		}
	}
}

// unlockAndRemove removes the lock file while still holding it, so that
// nobody locks a file that is gone.
func unlockAndRemove(f *os.File, path string) {
	_ = os.Remove(path)
	_ = f.Close()
}

// Release removes the lock file and frees the port for other builds.
func (r *PortReservation) Release() {
	if r == nil || r.lock == nil {
		return
	}
	unlockAndRemove(r.lock, r.path)
	r.lock = nil
}
