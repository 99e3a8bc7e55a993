package setup

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// Mount points in the guest.
const (
	mediaRoot   = "/run/media"
	windowsRoot = "/run/windows"
	espRoot     = "/run/esp"
)

// Files on the stand-in ISO.
const (
	isoMarker    = "winbake/standin.txt"
	isoKernel    = "boot/vmlinuz"
	isoInitrd    = "boot/initrd.img"
	isoInstall   = "sources/install.wim"
	isoBootImg   = "winbake/grub/boot.img"
	isoCoreImg   = "winbake/grub/core.img"
	isoShim      = "winbake/efi/shimx64.efi"
	isoGrub      = "winbake/efi/grubx64.efi"
	isoGrubCfg   = "winbake/efi/grub.cfg"
	bootX64Path  = "EFI/BOOT/BOOTX64.EFI"
	bootmgfwPath = "EFI/Microsoft/Boot/bootmgfw.efi"
	// The signed GRUB shim loads from its own directory, and where that
	// GRUB's built-in prefix looks for its config.
	grubName    = "grubx64.efi"
	grubCfgPath = "EFI/debian/grub.cfg"
)

// InstallSourceFiles are the files Setup reads from the stand-in ISO.
var InstallSourceFiles = []string{isoMarker, isoKernel, isoInitrd, isoInstall, isoBootImg, isoCoreImg, isoShim, isoGrub, isoGrubCfg}

// Main runs the stand-in: Windows Setup when booted from the ISO
// (winbake.boot=setup), the installed Windows when booted from disk. It
// returns only when the guest should idle (after an error Setup shows).
func Main(log *Log) {
	g := &Guest{Log: log}
	mode := Cmdline()["winbake.boot"]
	log.Printf("boot", "firmware %s, boot %q, %s since the kernel started", Firmware(), mode, Uptime())
	var err error
	if mode == "setup" {
		err = g.WindowsPE()
	} else {
		err = g.Installed()
	}
	if err == nil {
		return
	}
	var se *Error
	if !errors.As(err, &se) {
		se = &Error{Pass: "windowsPE", Message: "Windows installation encountered an unexpected error.", Details: []string{err.Error()}}
		if mode != "setup" {
			se.Pass = "boot"
			se.Message = "The computer restarted unexpectedly or encountered an unexpected error. Windows installation cannot proceed."
		}
	}
	log.SetupError(se)
}

func (g *Guest) pe(format string, args ...any) {
	g.Log.Printf("setup: windowsPE", format, args...)
}

// openMedia opens every CD and mounts every floppy read-only, and assigns
// drive letters.
func (g *Guest) openMedia(devs []BlockDevice) []Medium {
	return g.openMediaLog(devs, g.pe)
}

func (g *Guest) openMediaLog(devs []BlockDevice, logf func(format string, args ...any)) []Medium {
	var media []Medium
	cd, fd := 'D', 'A'
	for _, d := range devs {
		var m Medium
		var err error
		switch d.Kind {
		case "cd":
			m, err = openCDDevice(d, string(cd))
			cd++
		case "floppy":
			dir := filepath.Join(mediaRoot, d.Name)
			m = Medium{Device: d, Letter: string(fd), Dir: dir}
			err = Mount(d.Dev(), dir, "vfat", true, "iocharset=ascii,codepage=437")
			fd++
		default:
			continue
		}
		if err != nil {
			logf("%s: no readable medium (%v)", Medium{Device: d, Letter: m.Letter}.Where(), err)
			continue
		}
		if m.CD != nil {
			logf("%s: %s", m.Where(), m.CD.Describe())
		} else {
			logf("%s mounted", m.Where())
		}
		media = append(media, m)
	}
	return media
}

// openCDDevice reads a CD drive's medium through CDFS.
func openCDDevice(d BlockDevice, letter string) (Medium, error) {
	f, err := os.Open(d.Dev())
	if err != nil {
		return Medium{Device: d, Letter: letter}, err
	}
	m, err := OpenCD(d, letter, f, f)
	if err != nil {
		f.Close()
		return Medium{Device: d, Letter: letter}, err
	}
	return m, nil
}

func closeMedia(media []Medium) {
	for _, m := range media {
		_ = m.Close()
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// WindowsPE is the Setup run from the install media. On success it does not
// return: the guest restarts.
func (g *Guest) WindowsPE() error {
	start := time.Now()
	firmware := Firmware()
	g.Modprobe(InboxModules...)
	secureBoot := g.SecureBoot()
	g.pe("Windows Setup (winbake stand-in) starting, %s firmware%s", firmware, map[bool]string{true: ", Secure Boot on"}[secureBoot])
	devs := WaitDevices(700*time.Millisecond, 5*time.Second)
	media := g.openMedia(devs)

	var src *Medium
	for i, m := range media {
		if m.CD == nil {
			continue
		}
		_, errWIM := m.Stat(isoInstall)
		_, errMarker := m.Stat(isoMarker)
		if errWIM == nil && errMarker == nil {
			src = &media[i]
			break
		}
		for _, err := range []error{errWIM, errMarker} {
			if err != nil {
				g.pe("installation source: %v", err)
			}
		}
	}
	if src == nil {
		return &Error{Pass: "windowsPE", Message: "A media driver your computer needs is missing. This could be a DVD, USB or Hard disk driver.",
			Details: []string{"no CD carries sources/install.wim and winbake/standin.txt"}}
	}
	g.pe("installation source %s", src.Where())

	raw, source, problems, ok := FindAnswerFile(media)
	for _, p := range problems {
		g.pe("answer file search: %s", p)
	}
	if !ok {
		var where []string
		for _, m := range media {
			where = append(where, m.Where())
		}
		return &Error{Pass: "windowsPE", Message: "Windows Setup is waiting for input on its first page (language, time and keyboard).",
			Details: append([]string{"no autounattend.xml in the root of any CD or floppy; searched " + strings.Join(where, ", ")}, problems...)}
	}
	g.pe("answer file %s (%d bytes)", source, len(raw))
	ans, err := ParseAnswer(source, raw)
	if err != nil {
		return err
	}
	if ans.Setup == nil {
		return &Error{Pass: "windowsPE", Message: "Windows Setup is waiting for input on its first page (language, time and keyboard).",
			Details: []string{fmt.Sprintf("%s has no Microsoft-Windows-Setup component for processorArchitecture %s in pass windowsPE", source, Architecture)}}
	}

	st := &State{Phase: PhaseSpecialize, Firmware: firmware, SecureBoot: secureBoot, AnswerFile: source, Registry: map[string]string{}}
	st.WinRM = WinRMState{WinRMConfig: winsim.NewWinRMConfig()}

	// Drivers: only from PnpCustomizationsWinPE paths.
	var modules []string
	seen := map[string]bool{}
	for _, p := range ans.DriverPaths {
		df, misses, ok := ResolveDriverPath(media, p)
		if !ok {
			g.pe("driver path %s: not found on any medium", p)
			for _, miss := range misses {
				g.pe("driver path %s: %s", p, miss)
			}
			continue
		}
		if seen[df.Dir] {
			continue // another drive letter for a folder already loaded
		}
		seen[df.Dir] = true
		if len(df.INFs) == 0 {
			g.pe("driver path %s (%s): no .inf files", p, df.Medium.Where())
			continue
		}
		for _, inf := range df.INFs {
			g.pe("driver path %s (%s): %s.inf added to the driver store", p, df.Medium.Where(), inf)
			st.Drivers = appendOnce(st.Drivers, inf)
			if m, ok := DriverModules[inf]; ok && !slices.Contains(modules, m) {
				modules = append(modules, m)
			}
		}
	}
	if len(modules) > 0 {
		g.Modprobe(modules...)
		devs = WaitDevices(700*time.Millisecond, 5*time.Second)
	}

	if !ans.Setup.AcceptEula {
		return &Error{Pass: "windowsPE", Message: "Windows Setup is waiting on the \"Applicable notices and license terms\" page.",
			Details: []string{"UserData/AcceptEula is not true"}}
	}

	// The image.
	f, err := src.Open(isoInstall)
	if err != nil {
		return err
	}
	images, err := installmedia.ReadWIMImages(f)
	f.Close()
	if err != nil {
		return &Error{Pass: "windowsPE", Message: "Windows cannot open the required file D:\\Sources\\install.wim. Make sure all files required for installation are available, and restart the installation. Error code: 0x8007000D", Details: []string{err.Error()}}
	}
	img, err := selectImage(images, ans.Setup.ImageKey, ans.Setup.ImageValue)
	if err != nil {
		return err
	}
	st.Image.Name, st.Image.Index, st.Image.EditionID, st.Image.Version = img.Name, img.Index, img.EditionID, img.Version.String()
	g.pe("image %d %q (%s, %s)", img.Index, img.Name, img.EditionID, img.Version)

	// The disk.
	var disks []BlockDevice
	for _, d := range devs {
		if d.Kind == "disk" {
			disks = append(disks, d)
		}
	}
	if ans.Setup.Disk == nil || ans.Setup.InstallTo == nil {
		_, err := PlanDisk(ans.Setup.Disk, ans.Setup.InstallTo, firmware, 0)
		return err
	}
	id := ans.Setup.Disk.DiskID
	if id < 0 || id >= len(disks) {
		details := []string{fmt.Sprintf("disk %d does not exist: Setup sees %d disk(s)", id, len(disks))}
		for _, pci := range PCIDevices() {
			kind := pci.VirtioKind()
			if (kind == "virtio-blk" || kind == "virtio-scsi") && pci.Driver == "" {
				details = append(details, fmt.Sprintf("the %s controller at PCI %s has no driver: PnpCustomizationsWinPE has no path to %s on an attached medium",
					kind, pci.Address, DriverFor[kind]))
			}
		}
		return diskError(details...)
	}
	disk := disks[id]
	g.pe("disk %d: %s, %d MB, %s", id, disk.Name, disk.Sectors*sectorSize>>20, disk.Driver)
	plan, err := PlanDisk(ans.Setup.Disk, ans.Setup.InstallTo, firmware, disk.Sectors)
	if err != nil {
		return err
	}
	if err := g.partition(disk, plan, st); err != nil {
		return err
	}
	winDev := PartitionDev(disk.Dev(), plan.Windows+1)
	if err := Mount(winDev, windowsRoot, "vfat", false, "iocharset=utf8,shortname=mixed"); err != nil {
		return err
	}
	if err := g.applyImage(src, ans, plan, disk, st); err != nil {
		return err
	}
	for _, c := range ans.Setup.Commands {
		g.runCommand(st, "windowsPE", c)
	}
	st.Note("windowsPE complete in %s", time.Since(start).Round(time.Millisecond))
	if err := st.Save(windowsRoot); err != nil {
		return err
	}
	_ = Unmount(windowsRoot)
	closeMedia(media)
	g.pe("windowsPE took %s (%s since the kernel started)", time.Since(start).Round(time.Millisecond), Uptime())
	g.Log.Line(WindowsPEDoneLine)
	g.Log.Line(RestartLine)
	Halt(true)
	return nil
}

func selectImage(images []installmedia.Image, key, value string) (installmedia.Image, error) {
	notFound := func(detail string) error {
		return &Error{Pass: "windowsPE", Message: "Windows cannot find the Microsoft Software License Terms. Make sure the installation sources are valid and restart the installation.",
			Details: []string{detail}}
	}
	switch strings.ToUpper(key) {
	case "":
		if len(images) == 1 {
			return images[0], nil
		}
		return installmedia.Image{}, &Error{Pass: "windowsPE", Message: "Windows Setup is waiting on the \"Select the operating system you want to install\" page.",
			Details: []string{fmt.Sprintf("ImageInstall/OSImage/InstallFrom/MetaData selects no image and install.wim holds %d", len(images))}}
	case "/IMAGE/NAME":
		for _, img := range images {
			if strings.EqualFold(img.Name, value) {
				return img, nil
			}
		}
	case "/IMAGE/INDEX":
		for _, img := range images {
			if fmt.Sprint(img.Index) == value {
				return img, nil
			}
		}
	case "/IMAGE/DESCRIPTION":
		for _, img := range images {
			if strings.EqualFold(img.Description, value) {
				return img, nil
			}
		}
	default:
		return installmedia.Image{}, notFound(fmt.Sprintf("MetaData key %q is not /IMAGE/NAME, /IMAGE/INDEX or /IMAGE/DESCRIPTION", key))
	}
	var names []string
	for _, img := range images {
		names = append(names, fmt.Sprintf("%d %q", img.Index, img.Name))
	}
	return installmedia.Image{}, notFound(fmt.Sprintf("%s %q is not in install.wim, which holds %s", key, value, strings.Join(names, ", ")))
}

// partition writes the partition table and formats the partitions.
func (g *Guest) partition(disk BlockDevice, plan *Plan, st *State) error {
	dev := disk.Dev()
	// Wipe: clear the first and last MiB (old tables, boot code).
	zero := make([]byte, 1<<20)
	if err := WriteAt(dev, 0, zero); err != nil {
		return err
	}
	if err := WriteAt(dev, int64(disk.Sectors*sectorSize)-int64(len(zero)), zero); err != nil {
		return err
	}
	mbr := plan.MBR(binary.LittleEndian.Uint32(randomBytes(4)))
	if err := WriteAt(dev, 0, mbr); err != nil {
		return err
	}
	if plan.Style == StyleGPT {
		primary, backup := plan.GPT(func() [16]byte {
			var u [16]byte
			copy(u[:], randomBytes(16))
			u[6] = u[6]&0x0f | 0x40
			u[8] = u[8]&0x3f | 0x80
			return u
		})
		if err := WriteAt(dev, sectorSize, primary); err != nil {
			return err
		}
		if err := WriteAt(dev, int64(disk.Sectors*sectorSize)-int64(len(backup)), backup); err != nil {
			return err
		}
	}
	if err := RereadPartitions(dev, len(plan.Partitions)); err != nil {
		return err
	}
	for _, p := range plan.Partitions {
		typeID := p.GPTType
		if plan.Style == StyleMBR {
			typeID = fmt.Sprintf("0x%02X", p.MBRType)
		}
		desc := fmt.Sprintf("partition %d: %s, %d MB, type %s", p.Number, p.Type, p.SizeMB(), typeID)
		if p.Active {
			desc += ", active"
		}
		if p.Format != "" {
			label := p.Label
			if label == "" {
				label = p.Type
			}
			if err := g.FormatFAT(PartitionDev(dev, p.Number), label); err != nil {
				return err
			}
			desc += fmt.Sprintf(", formatted %s (stand-in file system: FAT32), label %q", p.Format, p.Label)
		}
		if p.Letter != "" {
			desc += ", " + p.Letter + ":"
		}
		g.pe("%s", desc)
		st.Partitions = append(st.Partitions, PartitionRecord{Number: p.Number, Type: p.Type, SizeMB: p.SizeMB(), Format: p.Format, Label: p.Label, TypeID: typeID})
	}
	g.pe("disk %s: %s partition table written", disk.Name, plan.Style)
	return nil
}

// copyFromMedium copies a file of the medium to dst and syncs it.
func copyFromMedium(dst string, m *Medium, rel string) error {
	in, err := m.Open(rel)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// applyImage "applies" the image: the stand-in's kernel and initramfs, the
// answer file in Panther, and the boot loader for the firmware.
func (g *Guest) applyImage(src *Medium, ans *Answer, plan *Plan, disk BlockDevice, st *State) error {
	for _, c := range [][2]string{{KernelPath, isoKernel}, {InitrdPath, isoInitrd}} {
		if err := copyFromMedium(filepath.Join(windowsRoot, c[0]), src, c[1]); err != nil {
			return fmt.Errorf("applying the image: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(windowsRoot, System32Path), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(windowsRoot, filepath.Dir(PantherPath)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(windowsRoot, PantherPath), ans.Raw, 0o644); err != nil {
		return err
	}
	g.pe("image applied to partition %d", plan.Windows+1)

	switch plan.Style {
	case StyleMBR:
		boot, err := src.ReadFile(isoBootImg)
		if err != nil {
			return err
		}
		core, err := src.ReadFile(isoCoreImg)
		if err != nil {
			return err
		}
		if len(boot) < 440 || len(core) > (alignment-1)*sectorSize {
			return fmt.Errorf("boot loader images have unexpected sizes (%d, %d bytes)", len(boot), len(core))
		}
		if err := WriteAt(disk.Dev(), 0, boot[:440]); err != nil {
			return err
		}
		if err := WriteAt(disk.Dev(), sectorSize, core); err != nil {
			return err
		}
		g.pe("boot code written to the master boot record of %s", disk.Name)
	case StyleGPT:
		espDev := PartitionDev(disk.Dev(), plan.ESP+1)
		if err := Mount(espDev, espRoot, "vfat", false, "iocharset=utf8,shortname=mixed"); err != nil {
			return err
		}
		// The boot chain of signed media, so the disk boots under Secure
		// Boot: shim (signed by Microsoft) at the removable-media path and
		// as Windows Boot Manager, the signed GRUB beside each, its config.
		files := [][2]string{
			{bootX64Path, isoShim},
			{path.Join(path.Dir(bootX64Path), grubName), isoGrub},
			{bootmgfwPath, isoShim},
			{path.Join(path.Dir(bootmgfwPath), grubName), isoGrub},
			{grubCfgPath, isoGrubCfg},
		}
		for _, f := range files {
			if err := copyFromMedium(filepath.Join(espRoot, f[0]), src, f[1]); err != nil {
				_ = Unmount(espRoot)
				return err
			}
		}
		if err := Unmount(espRoot); err != nil {
			return err
		}
		g.pe("boot files written to the EFI system partition (\\EFI\\BOOT\\BOOTX64.EFI)")
	}
	return nil
}

func (g *Guest) runCommand(st *State, pass string, c Command) *PowerAction {
	return g.record(st, pass, c, Interpret(st, c.CommandLine))
}

// runMediaCommand runs a command that reads the media (usesMedia).
func (g *Guest) runMediaCommand(st *State, pass string, c Command, media []Medium) {
	g.record(st, pass, c, InterpretWithMedia(st, media, c.CommandLine))
}

func (g *Guest) record(st *State, pass string, c Command, out Outcome) *PowerAction {
	st.Commands = append(st.Commands, CommandRecord{Pass: pass, Order: c.Order, CommandLine: c.CommandLine, Outcome: out.Summary})
	desc := ""
	if c.Description != "" {
		desc = " (" + c.Description + ")"
	}
	g.Log.Printf("setup: "+pass, "command %d%s: %s -> %s", c.Order, desc, c.CommandLine, out.Summary)
	return out.Power
}

// --- the installed Windows ----------------------------------------------------

// installed is one boot of the installed Windows.
type installed struct {
	g     *Guest
	st    *State
	dev   string // the Windows partition's node
	winrm WinRMService
	mu    sync.Mutex
	down  bool
}

// Installed boots the installed Windows: it finds its volume, runs the
// remaining Setup passes, starts the services and idles (it returns only on
// an error).
func (g *Guest) Installed() (err error) {
	start := time.Now()
	g.Modprobe(InboxModules...)
	// The boot disk's storage driver is in the driver store: Setup could
	// not have installed to the disk without it.
	g.Modprobe("virtio_blk", "virtio_scsi")
	devs := WaitDevices(500*time.Millisecond, 5*time.Second)
	var found string
	for _, d := range devs {
		if d.Kind != "disk" {
			continue
		}
		for _, part := range Partitions(d.Name) {
			if err := Mount(part, windowsRoot, "vfat", false, "iocharset=utf8,shortname=mixed"); err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(windowsRoot, StatePath)); err == nil {
				found = part
				break
			}
			_ = Unmount(windowsRoot)
		}
		if found != "" {
			break
		}
	}
	if found == "" {
		return &Error{Pass: "boot", Message: "INACCESSIBLE_BOOT_DEVICE: your PC ran into a problem and needs to restart.",
			Details: []string{"no disk partition holds the stand-in's installed Windows (" + StatePath + ")"}}
	}
	// Errors from here on are Setup's on the installed system: they go to
	// C:\Windows\Panther\setuperr.log too.
	defer func() {
		if err != nil {
			if werr := AppendSetupErr(windowsRoot, "[setup]", "%v", err); werr != nil {
				g.Log.Printf("setup", "writing setuperr.log: %v", werr)
			}
		}
	}()
	st, err := LoadState(windowsRoot)
	if err != nil {
		return err
	}
	st.Boots++
	g.Log.Printf("windows", "booting Windows from %s (boot %d, phase %s, %s)", found, st.Boots, st.Phase, st.Image.Name)
	w := &installed{g: g, st: st, dev: found}
	save := func() error { return st.Save(windowsRoot) }
	if st.Sysprep == "generalized" {
		st.Sysprep = ""
		st.Phase = PhaseSpecialize
		st.Note("generalized image: specialize and oobeSystem run again")
		// sysprep's /unattend answer file replaces the one cached at
		// installation for these passes (winsim.SysprepAnswerFile).
		sysprepAnswer := filepath.Join(windowsRoot, WinsimStateDir, winsim.SysprepAnswerFile)
		if b, err := os.ReadFile(sysprepAnswer); err == nil {
			if err := os.WriteFile(filepath.Join(windowsRoot, PantherPath), b, 0o644); err != nil {
				return err
			}
			if err := os.Remove(sysprepAnswer); err != nil {
				return err
			}
			st.Note("sysprep's /unattend answer file is the cached answer file now")
		}
	}
	var power *PowerAction
	setupRan := false
	if st.Phase == PhaseSpecialize || st.Phase == PhaseOOBE {
		setupRan = true
		raw, err := os.ReadFile(filepath.Join(windowsRoot, PantherPath))
		if err != nil {
			return err
		}
		ans, err := ParseAnswer(`C:\Windows\Panther\unattend.xml`, raw)
		if err != nil {
			return err
		}
		if st.Phase == PhaseSpecialize {
			w.specialize(ans)
			st.Phase = PhaseOOBE
			if err := save(); err != nil {
				return err
			}
		}
		power = w.oobe(ans)
		st.Phase = PhaseComplete
		st.Note("Setup complete")
		if err := save(); err != nil {
			return err
		}
		g.Log.Printf("setup", "specialize and oobeSystem took %s", time.Since(start).Round(time.Millisecond))
		g.Log.Line(SetupCompleteLine)
	} else if err := save(); err != nil {
		return err
	}
	w.services(setupRan)
	g.Log.Line(ReadyLine)
	if power != nil {
		w.after(*power)
	}
	Idle()
	return nil
}

func (w *installed) specialize(ans *Answer) {
	log := func(format string, args ...any) { w.g.Log.Printf("setup: specialize", format, args...) }
	name := ans.ComputerName
	if name == "" || name == "*" {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := randomBytes(11)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		name = "WIN-" + string(b)
	}
	w.st.ComputerName = strings.ToUpper(name)
	log("computer name %s", w.st.ComputerName)
	tz := ans.TimeZone
	if tz == "" {
		tz = "Pacific Standard Time"
	}
	if !unattend.IsTimeZone(tz) {
		log("time zone %q is not a Windows time zone ID; keeping Pacific Standard Time", tz)
		if err := AppendSetupErr(windowsRoot, "[Shell Unattend]", "TimeZone %q is not a valid time zone ID; the default is kept. [0x80070057]", tz); err != nil {
			log("writing setuperr.log: %v", err)
		}
		tz = "Pacific Standard Time"
	}
	w.st.TimeZone = tz
	log("time zone %s", tz)
	for _, c := range ans.SpecializeCommands {
		w.g.runCommand(w.st, "specialize", c)
	}
	w.st.Note("specialize: computer name %s, time zone %s", w.st.ComputerName, tz)
	log("complete")
}

// oobe creates the accounts, logs on automatically and runs the
// FirstLogonCommands. It returns the last power action they asked for.
func (w *installed) oobe(ans *Answer) *PowerAction {
	log := func(format string, args ...any) { w.g.Log.Printf("setup: oobeSystem", format, args...) }
	for _, a := range ans.Accounts {
		exists := false
		for i, have := range w.st.Accounts {
			if strings.EqualFold(have.Name, a.Name) {
				w.st.Accounts[i] = a
				exists = true
			}
		}
		if !exists {
			w.st.Accounts = append(w.st.Accounts, a)
		}
		if a.Builtin {
			log("Administrator password set")
		} else {
			log("local account %s created (group %s)", a.Name, a.Group)
		}
	}
	var power *PowerAction
	al := ans.AutoLogon
	switch {
	case al == nil || !al.Enabled:
		log("no automatic logon: Windows waits at the sign-in screen, FirstLogonCommands do not run")
	case !w.canLogOn(al.Username, al.Password):
		log("automatic logon as %s failed: the user name or password is incorrect; FirstLogonCommands do not run", al.Username)
		if err := AppendSetupErr(windowsRoot, "[Shell Unattend]", "AutoLogon: logon of %s failed: the user name or password is incorrect. [0x8007052e]", al.Username); err != nil {
			log("writing setuperr.log: %v", err)
		}
	default:
		w.st.AutoLogon.Username = al.Username
		w.st.AutoLogon.Remaining = al.LogonCount - 1
		log("%s logged on automatically", al.Username)
		var media []Medium
		opened := false
		for _, c := range ans.FirstLogonCommands {
			if usesMedia(c.CommandLine) && !opened {
				media, opened = w.g.openMediaLog(BlockDevices(), log), true
				defer closeMedia(media)
			}
			if usesMedia(c.CommandLine) {
				w.g.runMediaCommand(w.st, "oobeSystem", c, media)
				continue
			}
			if p := w.g.runCommand(w.st, "oobeSystem", c); p != nil {
				power = p
			}
		}
	}
	w.st.Note("oobeSystem: %d account(s), %d FirstLogonCommands", len(ans.Accounts), len(ans.FirstLogonCommands))
	log("complete")
	return power
}

func (w *installed) canLogOn(user, password string) bool {
	name := user
	if i := strings.LastIndex(name, `\`); i >= 0 {
		name = name[i+1:]
	}
	for _, a := range w.st.Accounts {
		if strings.EqualFold(a.Name, name) {
			return a.Password == password
		}
	}
	return false
}

// services starts the NIC drivers, the network and WinRM.
func (w *installed) services(justConfigured bool) {
	g := w.g
	if w.st.ComputerName != "" {
		_ = SetHostname(w.st.ComputerName)
	}
	for _, d := range w.st.Drivers {
		if m, ok := DriverModules[d]; ok && m == "virtio_net" {
			g.Modprobe(m)
		}
	}
	addr, err := g.Network()
	if err != nil {
		g.Log.Printf("network", "%v", err)
	} else {
		g.Log.Printf("network", "%s", addr)
	}
	if w.cloudbaseInit() {
		w.Restart("cloudbase-init")
	}
	w.qemuGuestAgent()
	ok, why := w.st.WinRMReachable(justConfigured)
	if !ok {
		g.Log.Line(WinRMNotStartedPrefix + why)
		return
	}
	// An account whose password must change first is refused by the
	// simulated Windows itself (winsim's PasswordMustChange).
	users := map[string]string{}
	for _, a := range w.st.Accounts {
		users[a.Name] = a.Password
	}
	svc := NewWinRMService()
	cfg := WinRMConfig{
		Model: &w.st.WinRM.WinRMConfig, Users: users,
		LocalAccountTokenFilterPolicy: w.st.WinRM.LocalAccountTokenFilterPolicy,
		ComputerName:                  w.st.ComputerName,
		State:                         w.st, StateRoot: windowsRoot, StateDevice: w.dev,
		SaveState: func() error { return w.st.Save(windowsRoot) },
		Power:     w, Log: g.Log,
	}
	if err := svc.Start(cfg); err != nil {
		g.Log.Line(WinRMNotStartedPrefix + err.Error())
		return
	}
	w.winrm = svc
}

// after carries out a shutdown or restart a FirstLogonCommand asked for.
func (w *installed) after(p PowerAction) {
	if p.Delay > 0 {
		w.g.Log.Printf("power", "%s scheduled in %s", map[bool]string{true: "restart", false: "shutdown"}[p.Restart], p.Delay)
		time.Sleep(p.Delay)
	}
	what := "shutdown.exe"
	if p.Sysprep {
		what = "sysprep"
	}
	if p.Restart {
		w.Restart(what)
	}
	w.PowerOff(what)
}

func (w *installed) halt(restart bool, reason string) {
	w.mu.Lock()
	if w.down {
		w.mu.Unlock()
		Idle()
	}
	w.down = true
	w.mu.Unlock()
	if w.winrm != nil {
		_ = w.winrm.Stop()
	}
	w.st.Note("%s (%s)", map[bool]string{true: "restart", false: "shutdown"}[restart], reason)
	_ = w.st.Save(windowsRoot)
	_ = Unmount(windowsRoot)
	if restart {
		w.g.Log.Line(RestartLine + " (" + reason + ")")
	} else {
		w.g.Log.Line(PowerOffLine + " (" + reason + ")")
	}
	Halt(restart)
}

// PowerOff implements Power.
func (w *installed) PowerOff(reason string) { w.halt(false, reason) }

// Restart implements Power.
func (w *installed) Restart(reason string) { w.halt(true, reason) }
