package setup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Guest is the Linux the stand-in runs on: devices, modules, mounts, power.
type Guest struct {
	Log *Log
	// Busybox is the busybox binary (default /bin/busybox).
	Busybox string
}

func (g *Guest) busybox(args ...string) ([]byte, error) {
	bb := g.Busybox
	if bb == "" {
		bb = "/bin/busybox"
	}
	out, err := exec.Command(bb, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("busybox %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// InboxModules are the drivers Windows has in the box: CD/DVD, floppy,
// IDE/SATA (AHCI), Intel e1000/e1000e NICs, FAT, the virtio PCI transport
// (the bus, not the device drivers). CDs are read by package cdfs, as
// Windows' CDFS reads them, not by Linux's isofs.
var InboxModules = []string{
	"virtio_pci", "ata_piix", "ahci", "sd_mod", "sr_mod", "floppy",
	"nls_cp437", "nls_ascii", "nls_utf8", "vfat", "e1000", "e1000e",
}

// Modprobe loads modules, logging (not failing on) those that do not load:
// a floppy driver without a floppy controller is normal.
func (g *Guest) Modprobe(mods ...string) {
	var rest []string
	for _, m := range mods {
		if m == "floppy" {
			_, _ = g.busybox("modprobe", m)
			continue
		}
		rest = append(rest, m)
	}
	if len(rest) == 0 {
		return
	}
	if _, err := g.busybox(append([]string{"modprobe", "-a"}, rest...)...); err != nil {
		g.Log.Printf("drivers", "%v", err)
	}
}

// Firmware reports "uefi" when the kernel was started by UEFI firmware.
func Firmware() string {
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		return FirmwareUEFI
	}
	return FirmwareBIOS
}

// efiGlobalVariable is the vendor GUID of the UEFI specification's variables.
const efiGlobalVariable = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

// SecureBoot reports whether UEFI firmware booted the kernel with Secure
// Boot enforced: the SecureBoot variable read through efivarfs (4 bytes of
// attributes, then the value).
func (g *Guest) SecureBoot() bool {
	if Firmware() != FirmwareUEFI {
		return false
	}
	g.Modprobe("efivarfs")
	dir := "/sys/firmware/efi/efivars"
	name := filepath.Join(dir, "SecureBoot-"+efiGlobalVariable)
	if _, err := os.Stat(name); err != nil {
		if err := Mount("efivarfs", dir, "efivarfs", true, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			g.Log.Printf("boot", "efivarfs: %v", err)
		}
	}
	b, err := os.ReadFile(name)
	return err == nil && len(b) == 5 && b[4] == 1
}

// Cmdline returns the kernel command line's key=value words.
func Cmdline() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	out := map[string]string{}
	for _, w := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(w, "=")
		out[k] = v
	}
	return out
}

// BlockDevice is a whole disk, CD drive or floppy drive.
type BlockDevice struct {
	Name    string // "vda", "sda", "sr0", "fd0"
	Kind    string // "disk", "cd", "floppy"
	Sectors uint64 // 512-byte sectors
	Driver  string // the kernel driver behind it, e.g. "virtio_blk", "ahci"
	sysPath string
}

// Dev is the device node.
func (b BlockDevice) Dev() string { return "/dev/" + b.Name }

// BlockDevices lists disks, CDs and floppies in a stable order (by their
// device path, which follows the PCI and port order).
func BlockDevices() []BlockDevice {
	entries, _ := os.ReadDir("/sys/block")
	var out []BlockDevice
	for _, e := range entries {
		name := e.Name()
		b := BlockDevice{Name: name}
		switch {
		case strings.HasPrefix(name, "sr"):
			b.Kind = "cd"
		case strings.HasPrefix(name, "fd"):
			b.Kind = "floppy"
		case strings.HasPrefix(name, "vd"), strings.HasPrefix(name, "sd"), strings.HasPrefix(name, "nvme"):
			b.Kind = "disk"
		default:
			continue
		}
		b.sysPath, _ = filepath.EvalSymlinks(filepath.Join("/sys/block", name))
		if s, err := os.ReadFile(filepath.Join("/sys/block", name, "size")); err == nil {
			b.Sectors, _ = strconv.ParseUint(strings.TrimSpace(string(s)), 10, 64)
		}
		b.Driver = deviceDriver(b.sysPath)
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sysPath < out[j].sysPath })
	return out
}

// deviceDriver walks up from a block device's sysfs path and returns the
// controller driver behind it (virtio_blk, virtio_scsi, ahci, ata_piix,
// floppy, ...), skipping the generic sd/sr/virtio_pci drivers.
func deviceDriver(sysPath string) string {
	for p := filepath.Dir(sysPath); strings.HasPrefix(p, "/sys/devices/"); p = filepath.Dir(p) {
		d, err := os.Readlink(filepath.Join(p, "driver"))
		if err != nil {
			continue
		}
		switch name := filepath.Base(d); name {
		case "sd", "sr", "virtio_pci":
		default:
			return name
		}
	}
	return ""
}

// WaitDevices waits until the set of block devices has not changed for
// quiet, at most max.
func WaitDevices(quiet, max time.Duration) []BlockDevice {
	deadline := time.Now().Add(max)
	last := ""
	stable := time.Now()
	for {
		devs := BlockDevices()
		var names []string
		for _, d := range devs {
			names = append(names, d.Name+":"+strconv.FormatUint(d.Sectors, 10))
		}
		key := strings.Join(names, ",")
		if key != last {
			last, stable = key, time.Now()
		}
		if time.Since(stable) >= quiet || time.Now().After(deadline) {
			return devs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PCIDevice is a PCI function with its IDs.
type PCIDevice struct {
	Address        string
	Vendor, Device string // "0x1af4", "0x1001"
	Driver         string
}

// PCIDevices lists the PCI functions. For a virtio function, Driver is
// the driver of its virtio device (virtio_blk, ...), not the virtio-pci
// transport's.
func PCIDevices() []PCIDevice {
	entries, _ := os.ReadDir("/sys/bus/pci/devices")
	var out []PCIDevice
	for _, e := range entries {
		base := filepath.Join("/sys/bus/pci/devices", e.Name())
		v, _ := os.ReadFile(filepath.Join(base, "vendor"))
		d, _ := os.ReadFile(filepath.Join(base, "device"))
		dev := PCIDevice{Address: e.Name(), Vendor: strings.TrimSpace(string(v)), Device: strings.TrimSpace(string(d))}
		driverOf := base
		if dev.Vendor == "0x1af4" {
			if kids, _ := filepath.Glob(filepath.Join(base, "virtio*")); len(kids) > 0 {
				driverOf = kids[0]
			}
		}
		if drv, err := os.Readlink(filepath.Join(driverOf, "driver")); err == nil {
			dev.Driver = filepath.Base(drv)
		}
		out = append(out, dev)
	}
	return out
}

// VirtioKind names a virtio PCI function: "virtio-blk", "virtio-scsi",
// "virtio-net" or "" for anything else.
func (d PCIDevice) VirtioKind() string {
	if d.Vendor != "0x1af4" {
		return ""
	}
	switch d.Device {
	case "0x1001", "0x1042":
		return "virtio-blk"
	case "0x1004", "0x1048":
		return "virtio-scsi"
	case "0x1000", "0x1041":
		return "virtio-net"
	}
	return ""
}

// Mount mounts dev on dir (created) with the file system type.
func Mount(dev, dir, fstype string, readonly bool, data string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var flags uintptr
	if readonly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount(dev, dir, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", dev, dir, fstype, err)
	}
	return nil
}

// Unmount unmounts dir.
func Unmount(dir string) error {
	return syscall.Unmount(dir, 0)
}

// RereadPartitions asks the kernel to read dev's partition table again and
// waits for the partition nodes to appear.
func RereadPartitions(dev string, partitions int) error {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const blkrrpart = 0x125F
	var lastErr error
	for i := 0; i < 20; i++ {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkrrpart, 0); errno != 0 {
			lastErr = errno
			time.Sleep(100 * time.Millisecond)
			continue
		}
		lastErr = nil
		break
	}
	if lastErr != nil {
		return fmt.Errorf("re-reading the partition table of %s: %w", dev, lastErr)
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(PartitionDev(dev, partitions)); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear", PartitionDev(dev, partitions))
}

// PartitionDev is the node of partition n of disk dev.
func PartitionDev(dev string, n int) string {
	if last := dev[len(dev)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", dev, n)
	}
	return fmt.Sprintf("%s%d", dev, n)
}

// Partitions lists the partition nodes of a disk.
func Partitions(disk string) []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/block", disk))
	var out []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join("/sys/block", disk, e.Name(), "partition")); err == nil {
			out = append(out, "/dev/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// WriteAt writes b to dev at byte offset off and syncs.
func WriteAt(dev string, off int64, b []byte) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	return syncAndClose(f)
}

// ReadAt reads n bytes of dev at off.
func ReadAt(dev string, off int64, n int) ([]byte, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	return b, err
}

// FormatFAT makes a FAT32 file system on dev (busybox mkdosfs).
func (g *Guest) FormatFAT(dev, label string) error {
	label = strings.ToUpper(label)
	if len(label) > 11 {
		label = label[:11]
	}
	args := []string{"mkdosfs"}
	if label != "" {
		args = append(args, "-n", label)
	}
	_, err := g.busybox(append(args, dev)...)
	return err
}

// Network brings up the first Ethernet interface with DHCP (busybox udhcpc),
// falling back to QEMU user networking's 10.0.2.15/24.
func (g *Guest) Network() (string, error) {
	_, _ = g.busybox("ip", "link", "set", "lo", "up")
	var iface string
	for i := 0; i < 50 && iface == ""; i++ {
		entries, _ := os.ReadDir("/sys/class/net")
		for _, e := range entries {
			if e.Name() != "lo" {
				iface = e.Name()
				break
			}
		}
		if iface == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if iface == "" {
		return "", errors.New("no network adapter with a driver")
	}
	if _, err := g.busybox("udhcpc", "-i", iface, "-n", "-q", "-t", "4", "-T", "1", "-s", "/etc/udhcpc.script"); err != nil {
		g.Log.Printf("network", "DHCP on %s failed (%v); using 10.0.2.15/24", iface, err)
		_, _ = g.busybox("ip", "link", "set", iface, "up")
		_, _ = g.busybox("ip", "addr", "add", "10.0.2.15/24", "dev", iface)
		_, _ = g.busybox("ip", "route", "add", "default", "via", "10.0.2.2")
	}
	out, _ := g.busybox("ip", "-4", "-o", "addr", "show", "dev", iface)
	addr := iface
	if f := strings.Fields(string(out)); len(f) >= 4 {
		addr = iface + " " + f[3]
	}
	return addr, nil
}

// Halt flushes the disks and resets (restart) or powers off the machine;
// it does not return.
func Halt(restart bool) {
	syscall.Sync()
	cmd := syscall.LINUX_REBOOT_CMD_POWER_OFF
	if restart {
		cmd = syscall.LINUX_REBOOT_CMD_RESTART
	}
	_ = syscall.Reboot(cmd)
	Idle()
}

// SetHostname sets the kernel host name.
func SetHostname(name string) error {
	return syscall.Sethostname([]byte(name))
}

// Uptime is the time since the kernel started.
func Uptime() time.Duration {
	b, _ := os.ReadFile("/proc/uptime")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	d, _ := time.ParseDuration(f[0] + "s")
	return d.Round(10 * time.Millisecond)
}

// Idle blocks forever. (An empty select would make the Go runtime abort
// with "all goroutines are asleep" when nothing else runs, and PID 1 must
// not exit.)
func Idle() {
	for {
		time.Sleep(time.Hour)
	}
}
