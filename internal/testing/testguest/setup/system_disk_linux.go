package setup

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// systemDisk is the disk of the installed Windows partition, as the
// simulated Windows' Optimize-Volume -ReTrim sees it: the unmap limits
// Linux reads from the virtual disk (which QEMU's discard_granularity
// sets) and a real discard of the partition's free clusters, so the qcow2
// under it really shrinks.
type systemDisk struct {
	partition string // the partition node, e.g. /dev/vda3
	mounted   string // where it is mounted (windowsRoot)
}

var _ winsim.SystemDisk = systemDisk{}

// disk is the whole disk the partition belongs to, e.g. "vda".
func (d systemDisk) disk() (string, error) {
	real, err := filepath.EvalSymlinks(filepath.Join("/sys/class/block", filepath.Base(d.partition)))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(real, "partition")); err != nil {
		return "", fmt.Errorf("%s is not a partition", d.partition)
	}
	return filepath.Base(filepath.Dir(real)), nil
}

// Discard reads the disk's queue limits: discard_granularity and
// discard_max_bytes (0: no discard), and the bus from the driver behind it.
func (d systemDisk) Discard() (winsim.DiscardSupport, error) {
	disk, err := d.disk()
	if err != nil {
		return winsim.DiscardSupport{}, err
	}
	read := func(name string) (uint64, error) {
		b, err := os.ReadFile(filepath.Join("/sys/block", disk, "queue", name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	var s winsim.DiscardSupport
	if s.Granularity, err = read("discard_granularity"); err != nil {
		return s, err
	}
	if s.MaxBytes, err = read("discard_max_bytes"); err != nil {
		return s, err
	}
	for _, b := range BlockDevices() {
		if b.Name != disk {
			continue
		}
		switch b.Driver {
		case "virtio_blk":
			s.Bus = winsim.BusVirtioBlk
		case "virtio_scsi":
			s.Bus = winsim.BusVirtioSCSI
		case "ahci", "ata_piix":
			s.Bus = winsim.BusSATA
		default:
			return s, fmt.Errorf("disk %s behind driver %q: the stand-in knows virtio-blk, virtio-scsi and SATA disks", disk, b.Driver)
		}
		return s, nil
	}
	return s, fmt.Errorf("disk %s not found among the block devices", disk)
}

// fstrimRange is struct fstrim_range of linux/fs.h.
type fstrimRange struct {
	Start, Len, MinLen uint64
}

// fitrim is FITRIM, _IOWR('X', 121, struct fstrim_range) (linux/fs.h).
const fitrim = 0xc0185879

// TrimFreeSpace discards every free cluster of the mounted partition with
// FITRIM, as fstrim(8) does (the FAT driver implements it,
// fs/fat/file.c), and returns the bytes the file system discarded.
func (d systemDisk) TrimFreeSpace() (uint64, error) {
	f, err := os.Open(d.mounted)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	syscall.Sync()
	r := fstrimRange{Len: math.MaxUint64}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fitrim, uintptr(unsafe.Pointer(&r))); errno != 0 {
		return 0, fmt.Errorf("FITRIM on %s: %w", d.mounted, errno)
	}
	return r.Len, nil
}
