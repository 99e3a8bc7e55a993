package setup

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Partition table styles.
const (
	StyleMBR = "MBR"
	StyleGPT = "GPT"
)

// Firmware the guest booted with.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// GPT partition types Windows Setup uses.
const (
	GPTTypeEFI       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	GPTTypeMSR       = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
	GPTTypeBasicData = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	GPTTypeRecovery  = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"
)

// MBR partition types.
const (
	MBRTypeNTFS  = 0x07
	MBRTypeFAT32 = 0x0C
)

const (
	sectorSize = 512
	alignment  = 2048 // 1 MiB in sectors
	gptEntries = 128
	gptEntry   = 128
	gptSectors = 1 + gptEntries*gptEntry/sectorSize // header + entries
)

// PlannedPartition is a partition as Setup creates it.
type PlannedPartition struct {
	Number      int    // PartitionID
	Type        string // CreatePartition type
	Start, Size uint64 // in sectors
	MBRType     byte
	GPTType     string
	GPTName     string
	GPTAttrs    uint64
	Format      string // "NTFS", "FAT32" or "" (not formatted)
	Label       string
	Letter      string
	Active      bool
}

// SizeMB is the size in MiB.
func (p PlannedPartition) SizeMB() uint64 { return p.Size * sectorSize >> 20 }

// Plan is the partition table Setup writes.
type Plan struct {
	Style      string
	Sectors    uint64
	Partitions []PlannedPartition
	// Windows is the index in Partitions of the InstallTo partition, ESP
	// that of the EFI system partition (-1 without one).
	Windows, ESP int
}

// diskError is Setup's DiskConfiguration error with details.
func diskError(details ...string) error {
	return &Error{Pass: "windowsPE", Message: "Windows could not apply the unattend answer file's <DiskConfiguration> setting.", Details: details}
}

// PlanDisk turns the answer file's DiskConfiguration into a partition table
// for a disk of sectors 512-byte sectors under firmware, and checks
// InstallTo against it, as Setup does.
func PlanDisk(d *DiskConfig, to *InstallTo, firmware string, sectors uint64) (*Plan, error) {
	if d == nil {
		return nil, &Error{Pass: "windowsPE", Message: "Windows Setup is waiting on the \"Where do you want to install Windows?\" page.",
			Details: []string{"the answer file has no DiskConfiguration/Disk, so Setup asks where to install"}}
	}
	if to == nil {
		return nil, &Error{Pass: "windowsPE", Message: "Windows Setup is waiting on the \"Where do you want to install Windows?\" page.",
			Details: []string{"the answer file has no ImageInstall/OSImage/InstallTo, so Setup asks where to install"}}
	}
	if len(d.Create) == 0 {
		return nil, diskError("DiskConfiguration/Disk creates no partitions")
	}
	p := &Plan{Style: StyleMBR, Sectors: sectors, Windows: -1, ESP: -1}
	lastUsable := sectors - 1
	if firmware == FirmwareUEFI {
		p.Style = StyleGPT
		if sectors < 2*gptSectors+alignment {
			return nil, diskError(fmt.Sprintf("disk %d is too small for a partition table", d.DiskID))
		}
		lastUsable = sectors - gptSectors - 1
	}
	next := uint64(alignment)
	for i, c := range d.Create {
		if c.Order != i+1 {
			return nil, diskError(fmt.Sprintf("CreatePartition Orders are %s: expected 1 to %d without gaps", orders(d.Create), len(d.Create)))
		}
		part := PlannedPartition{Number: i + 1, Type: c.Type}
		switch strings.ToUpper(c.Type) {
		case "PRIMARY":
			part.Type = "Primary"
			part.MBRType, part.GPTType, part.GPTName = MBRTypeNTFS, GPTTypeBasicData, "Basic data partition"
		case "EFI":
			if p.Style != StyleGPT {
				return nil, diskError(fmt.Sprintf("CreatePartition %d has Type EFI, which needs a GPT disk; the computer started with BIOS firmware, so Setup uses MBR", c.Order))
			}
			part.Type = "EFI"
			part.GPTType, part.GPTName = GPTTypeEFI, "EFI system partition"
			p.ESP = i
		case "MSR":
			if p.Style != StyleGPT {
				return nil, diskError(fmt.Sprintf("CreatePartition %d has Type MSR, which needs a GPT disk; the computer started with BIOS firmware, so Setup uses MBR", c.Order))
			}
			part.Type = "MSR"
			part.GPTType, part.GPTName = GPTTypeMSR, "Microsoft reserved partition"
		default:
			return nil, diskError(fmt.Sprintf("CreatePartition %d has Type %q: the stand-in supports Primary, EFI and MSR", c.Order, c.Type))
		}
		if p.Style == StyleMBR && i >= 4 {
			return nil, diskError("an MBR disk holds at most 4 primary partitions")
		}
		next = (next + alignment - 1) / alignment * alignment
		if next > lastUsable {
			return nil, diskError(fmt.Sprintf("disk %d (%d MB) has no room for CreatePartition %d", d.DiskID, sectors*sectorSize>>20, c.Order))
		}
		part.Start = next
		switch {
		case c.Extend && c.SizeMB != 0:
			return nil, diskError(fmt.Sprintf("CreatePartition %d has both Size and Extend", c.Order))
		case c.Extend:
			if i != len(d.Create)-1 {
				return nil, diskError(fmt.Sprintf("CreatePartition %d extends to the end of the disk but is not the last partition", c.Order))
			}
			part.Size = lastUsable + 1 - next
		case c.SizeMB <= 0:
			return nil, diskError(fmt.Sprintf("CreatePartition %d has neither a Size nor Extend", c.Order))
		default:
			part.Size = uint64(c.SizeMB) << 20 / sectorSize
			if next+part.Size-1 > lastUsable {
				return nil, diskError(fmt.Sprintf("CreatePartition %d (%d MB) does not fit on disk %d (%d MB)", c.Order, c.SizeMB, d.DiskID, sectors*sectorSize>>20))
			}
		}
		next += part.Size
		p.Partitions = append(p.Partitions, part)
	}
	for _, m := range d.Modify {
		if m.PartitionID < 1 || m.PartitionID > len(p.Partitions) {
			return nil, diskError(fmt.Sprintf("ModifyPartition %d names PartitionID %d; disk %d has partitions 1 to %d", m.Order, m.PartitionID, d.DiskID, len(p.Partitions)))
		}
		part := &p.Partitions[m.PartitionID-1]
		switch strings.ToUpper(m.Format) {
		case "":
		case "NTFS":
			part.Format = "NTFS"
		case "FAT32":
			part.Format = "FAT32"
			part.MBRType = MBRTypeFAT32
		default:
			return nil, diskError(fmt.Sprintf("ModifyPartition %d: Format %q is not NTFS or FAT32", m.Order, m.Format))
		}
		if part.Type == "MSR" && part.Format != "" {
			return nil, diskError(fmt.Sprintf("ModifyPartition %d formats the Microsoft reserved partition", m.Order))
		}
		if m.Label != "" {
			part.Label = m.Label
		}
		if m.Letter != "" {
			part.Letter = strings.ToUpper(m.Letter)
		}
		if m.Active {
			if p.Style == StyleGPT {
				return nil, diskError(fmt.Sprintf("ModifyPartition %d sets Active, which only MBR disks have", m.Order))
			}
			part.Active = true
		}
		if m.TypeID != "" {
			if err := part.setTypeID(p.Style, m.TypeID); err != nil {
				return nil, diskError(fmt.Sprintf("ModifyPartition %d: %v", m.Order, err))
			}
		}
	}
	if p.ESP >= 0 && p.Partitions[p.ESP].Format != "FAT32" {
		return nil, diskError("the EFI system partition must be formatted FAT32")
	}
	if to.DiskID != d.DiskID {
		return nil, &Error{Pass: "windowsPE", Message: "Windows could not apply the unattend answer file's <ImageInstall> setting.",
			Details: []string{fmt.Sprintf("InstallTo names disk %d; DiskConfiguration configures disk %d", to.DiskID, d.DiskID)}}
	}
	if to.PartitionID < 1 || to.PartitionID > len(p.Partitions) {
		return nil, &Error{Pass: "windowsPE", Message: "Windows could not apply the unattend answer file's <ImageInstall> setting.",
			Details: []string{fmt.Sprintf("InstallTo names partition %d; disk %d has partitions 1 to %d", to.PartitionID, to.DiskID, len(p.Partitions))}}
	}
	win := p.Partitions[to.PartitionID-1]
	if win.Type != "Primary" || win.Format != "NTFS" {
		return nil, &Error{Pass: "windowsPE", Message: "Windows must be installed to a partition formatted as NTFS.",
			Details: []string{fmt.Sprintf("InstallTo partition %d is a %s partition formatted %q", to.PartitionID, win.Type, win.Format)}}
	}
	p.Windows = to.PartitionID - 1
	if p.Style == StyleGPT && p.ESP < 0 {
		return nil, &Error{Pass: "windowsPE", Message: "Windows could not update the computer's boot configuration. Installation cannot proceed.",
			Details: []string{"the computer started with UEFI firmware and the answer file creates no EFI system partition"}}
	}
	return p, nil
}

func orders(cs []CreatePartition) string {
	var s []string
	for _, c := range cs {
		s = append(s, strconv.Itoa(c.Order))
	}
	return strings.Join(s, ", ")
}

func (part *PlannedPartition) setTypeID(style, id string) error {
	id = strings.Trim(strings.TrimSpace(id), "{}")
	if style == StyleMBR {
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(id), "0x"), 16, 8)
		if err != nil {
			return fmt.Errorf("TypeID %q is not an MBR partition type such as 0x27", id)
		}
		part.MBRType = byte(v)
		return nil
	}
	if _, err := guidBytes(id); err != nil {
		return fmt.Errorf("TypeID %q is not a GPT partition type GUID", id)
	}
	part.GPTType = strings.ToUpper(id)
	if part.GPTType == GPTTypeRecovery {
		// Required partition, no drive letter: what Windows sets on WinRE.
		part.GPTAttrs = 0x8000000000000001
	}
	return nil
}

// guidBytes encodes a GUID as GPT stores it (first three fields little
// endian).
func guidBytes(s string) ([16]byte, error) {
	var g [16]byte
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("malformed GUID %q", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, err
	}
	copy(g[:], raw)
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	return g, nil
}

// FormatGUID is the inverse of guidBytes.
func FormatGUID(g []byte) string {
	r := []byte{g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]}
	r = append(r, g[8:16]...)
	h := strings.ToUpper(hex.EncodeToString(r))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// MBR returns sector 0 for an MBR plan (boot code left zero), or the
// protective MBR of a GPT plan.
func (p *Plan) MBR(signature uint32) []byte {
	b := make([]byte, sectorSize)
	binary.LittleEndian.PutUint32(b[440:], signature)
	entry := func(i int, boot bool, typ byte, start, size uint64) {
		e := b[446+16*i:]
		if boot {
			e[0] = 0x80
		}
		copy(e[1:4], []byte{0xFE, 0xFF, 0xFF})
		e[4] = typ
		copy(e[5:8], []byte{0xFE, 0xFF, 0xFF})
		binary.LittleEndian.PutUint32(e[8:], uint32(min(start, 0xFFFFFFFF)))
		binary.LittleEndian.PutUint32(e[12:], uint32(min(size, 0xFFFFFFFF)))
	}
	if p.Style == StyleGPT {
		entry(0, false, 0xEE, 1, p.Sectors-1)
		b[446+1], b[446+2], b[446+3] = 0x00, 0x02, 0x00
	} else {
		for i, part := range p.Partitions {
			entry(i, part.Active, part.MBRType, part.Start, part.Size)
		}
	}
	b[510], b[511] = 0x55, 0xAA
	return b
}

// GPT returns the primary GPT (LBA 1 to 33) and the backup (the last 33
// sectors: entries, then header). guids supplies the disk GUID and one
// unique GUID per partition (random 16-byte values).
func (p *Plan) GPT(guids func() [16]byte) (primary, backup []byte) {
	entries := make([]byte, gptEntries*gptEntry)
	for i, part := range p.Partitions {
		e := entries[i*gptEntry:]
		t, _ := guidBytes(part.GPTType)
		copy(e[0:16], t[:])
		u := guids()
		copy(e[16:32], u[:])
		binary.LittleEndian.PutUint64(e[32:], part.Start)
		binary.LittleEndian.PutUint64(e[40:], part.Start+part.Size-1)
		binary.LittleEndian.PutUint64(e[48:], part.GPTAttrs)
		name := utf16.Encode([]rune(part.GPTName))
		for j, c := range name {
			if j >= 36 {
				break
			}
			binary.LittleEndian.PutUint16(e[56+2*j:], c)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	disk := guids()
	header := func(current, other, entriesLBA uint64) []byte {
		h := make([]byte, sectorSize)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], current)
		binary.LittleEndian.PutUint64(h[32:], other)
		binary.LittleEndian.PutUint64(h[40:], gptSectors+1)
		binary.LittleEndian.PutUint64(h[48:], p.Sectors-gptSectors-1)
		copy(h[56:72], disk[:])
		binary.LittleEndian.PutUint64(h[72:], entriesLBA)
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], gptEntry)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	last := p.Sectors - 1
	primary = append(header(1, last, 2), entries...)
	backup = append(append([]byte(nil), entries...), header(last, 1, last-gptSectors+1)...)
	return primary, backup
}
