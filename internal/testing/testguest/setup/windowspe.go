package setup

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

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

	src, err := g.findInstallSource(media)
	if err != nil {
		return err
	}
	ans, err := g.readAnswerFile(media)
	if err != nil {
		return err
	}

	st := &State{Phase: PhaseSpecialize, Firmware: firmware, SecureBoot: secureBoot, AnswerFile: ans.Source, Registry: map[string]string{}}
	st.WinRM = WinRMState{WinRMConfig: winsim.NewWinRMConfig()}

	if g.loadDrivers(ans, media, st) {
		devs = WaitDevices(700*time.Millisecond, 5*time.Second)
	}

	if !ans.Setup.AcceptEula {
		return &Error{Pass: "windowsPE", Message: "Windows Setup is waiting on the \"Applicable notices and license terms\" page.",
			Details: []string{"UserData/AcceptEula is not true"}}
	}

	if err := g.chooseImage(src, ans, st); err != nil {
		return err
	}
	disk, plan, err := g.chooseDisk(devs, ans, firmware)
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

// findInstallSource finds the CD that carries install.wim and the
// stand-in's marker.
func (g *Guest) findInstallSource(media []Medium) (*Medium, error) {
	for i, m := range media {
		if m.CD == nil {
			continue
		}
		_, errWIM := m.Stat(isoInstall)
		_, errMarker := m.Stat(isoMarker)
		if errWIM == nil && errMarker == nil {
			g.pe("installation source %s", media[i].Where())
			return &media[i], nil
		}
		for _, err := range []error{errWIM, errMarker} {
			if err != nil {
				g.pe("installation source: %v", err)
			}
		}
	}
	return nil, &Error{Pass: "windowsPE", Message: "A media driver your computer needs is missing. This could be a DVD, USB or Hard disk driver.",
		Details: []string{"no CD carries sources/install.wim and winbake/standin.txt"}}
}

// readAnswerFile finds and parses autounattend.xml; the answer must have a
// Microsoft-Windows-Setup component for windowsPE.
func (g *Guest) readAnswerFile(media []Medium) (*Answer, error) {
	raw, source, problems, ok := FindAnswerFile(media)
	for _, p := range problems {
		g.pe("answer file search: %s", p)
	}
	if !ok {
		var where []string
		for _, m := range media {
			where = append(where, m.Where())
		}
		return nil, &Error{Pass: "windowsPE", Message: "Windows Setup is waiting for input on its first page (language, time and keyboard).",
			Details: append([]string{"no autounattend.xml in the root of any CD or floppy; searched " + strings.Join(where, ", ")}, problems...)}
	}
	g.pe("answer file %s (%d bytes)", source, len(raw))
	ans, err := ParseAnswer(source, raw)
	if err != nil {
		return nil, err
	}
	if ans.Setup == nil {
		return nil, &Error{Pass: "windowsPE", Message: "Windows Setup is waiting for input on its first page (language, time and keyboard).",
			Details: []string{fmt.Sprintf("%s has no Microsoft-Windows-Setup component for processorArchitecture %s in pass windowsPE", source, Architecture)}}
	}
	return ans, nil
}

// loadDrivers adds the drivers of the PnpCustomizationsWinPE paths (and
// only those) to the driver store and loads their modules. It reports
// whether it loaded any, so the caller looks for devices again.
func (g *Guest) loadDrivers(ans *Answer, media []Medium, st *State) bool {
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
	if len(modules) == 0 {
		return false
	}
	g.Modprobe(modules...)
	return true
}

// chooseImage reads install.wim's image list and picks the image the
// answer file selects.
func (g *Guest) chooseImage(src *Medium, ans *Answer, st *State) error {
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
	return nil
}

// chooseDisk finds the disk the answer file installs to and plans its
// partitions.
func (g *Guest) chooseDisk(devs []BlockDevice, ans *Answer, firmware string) (BlockDevice, *Plan, error) {
	var disks []BlockDevice
	for _, d := range devs {
		if d.Kind == "disk" {
			disks = append(disks, d)
		}
	}
	if ans.Setup.Disk == nil || ans.Setup.InstallTo == nil {
		_, err := PlanDisk(ans.Setup.Disk, ans.Setup.InstallTo, firmware, 0)
		return BlockDevice{}, nil, err
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
		return BlockDevice{}, nil, diskError(details...)
	}
	disk := disks[id]
	g.pe("disk %d: %s, %d MB, %s", id, disk.Name, disk.Sectors*sectorSize>>20, disk.Driver)
	plan, err := PlanDisk(ans.Setup.Disk, ans.Setup.InstallTo, firmware, disk.Sectors)
	if err != nil {
		return BlockDevice{}, nil, err
	}
	return disk, plan, nil
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
