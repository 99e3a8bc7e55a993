package unattend

// Partition sizes in MiB (Windows Setup's Size unit is MB = 2^20 bytes).
const (
	// EFIPartitionMB is the EFI system partition (FAT32). 100 MB is
	// Microsoft's size for 512-byte-sector disks, which is what QEMU and
	// libvirt present by default.
	EFIPartitionMB = 100
	// MSRPartitionMB is the Microsoft reserved partition (current
	// Microsoft documentation: 16 MB).
	MSRPartitionMB = 16
	// MinRecoveryPartitionMB is the smallest Windows RE partition accepted:
	// Microsoft requires at least 300 MB for the Windows RE tools partition.
	MinRecoveryPartitionMB = 300
	// MaxRecoveryPartitionMB is the largest recovery partition accepted
	// (10 GiB); anything larger is almost certainly a unit mistake.
	MaxRecoveryPartitionMB = 10240
	// MinWindowsPartitionMB is the smallest Windows partition accepted:
	// Microsoft's documented minimum for the Windows Server system
	// partition is 32 GB, counted here as 32 GiB.
	MinWindowsPartitionMB = 32768
	// PartitionTableOverheadMB covers the partition tables and alignment:
	// the first partition starts at 1 MiB and GPT keeps a backup table in
	// the last sectors of the disk.
	PartitionTableOverheadMB = 2
)

// RecoveryPartitionTypeID is the GPT partition type of a Windows RE partition.
const RecoveryPartitionTypeID = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"

// Partition is one partition of the layout created by Windows Setup.
type Partition struct {
	// Number is the PartitionID (1-based, in disk order).
	Number int
	// Type is the CreatePartition type: "EFI", "MSR" or "Primary".
	Type string
	// SizeMB is the size in MiB; 0 means the partition fills the rest of
	// the disk (Extend).
	SizeMB int
	// Format, Label, Letter, TypeID and Active are applied with
	// ModifyPartition. A partition with no Format is not modified (MSR).
	Format string
	Label  string
	Letter string
	TypeID string
	Active bool
}

// Layout is the disk layout for one firmware type.
type Layout struct {
	Firmware   Firmware
	Partitions []Partition
	// WindowsPartition is the PartitionID Windows is installed to
	// (InstallTo/PartitionID).
	WindowsPartition int
}

// LayoutFor returns the partition layout for the given firmware.
//
// BIOS/MBR: one active primary NTFS partition filling the disk.
// UEFI/GPT: EFI (100 MB, FAT32), MSR (16 MB), an optional Windows RE partition
// of recoveryMB (NTFS, recovery type ID) and Windows (NTFS, rest of the disk).
// The recovery partition comes before Windows so that the Windows partition
// is last and can be extended when the image is deployed to a larger disk.
// recoveryMB is ignored for BIOS.
func LayoutFor(fw Firmware, recoveryMB int) Layout {
	if fw != FirmwareUEFI {
		return Layout{
			Firmware: FirmwareBIOS,
			Partitions: []Partition{
				{Number: 1, Type: "Primary", Format: "NTFS", Label: "Windows", Letter: "C", Active: true},
			},
			WindowsPartition: 1,
		}
	}
	parts := []Partition{
		{Number: 1, Type: "EFI", SizeMB: EFIPartitionMB, Format: "FAT32", Label: "System"},
		{Number: 2, Type: "MSR", SizeMB: MSRPartitionMB},
	}
	if recoveryMB > 0 {
		parts = append(parts, Partition{
			Number: 3, Type: "Primary", SizeMB: recoveryMB,
			Format: "NTFS", Label: "Recovery", TypeID: RecoveryPartitionTypeID,
		})
	}
	win := len(parts) + 1
	parts = append(parts, Partition{Number: win, Type: "Primary", Format: "NTFS", Label: "Windows", Letter: "C"})
	return Layout{Firmware: FirmwareUEFI, Partitions: parts, WindowsPartition: win}
}

// FixedMB is the sum of all partitions with a fixed size (everything except
// the Windows partition).
func (l Layout) FixedMB() int {
	total := 0
	for _, p := range l.Partitions {
		total += p.SizeMB
	}
	return total
}

// MinimumDiskMB is the smallest disk (in MiB) that holds the layout with a
// Windows partition of at least MinWindowsPartitionMB:
//
//	MinWindowsPartitionMB + FixedMB + PartitionTableOverheadMB
//
// i.e. 32770 MiB for BIOS, 32886 MiB for UEFI, plus the recovery partition.
func (l Layout) MinimumDiskMB() uint64 {
	return uint64(MinWindowsPartitionMB + l.FixedMB() + PartitionTableOverheadMB)
}

// MinimumDiskMB is LayoutFor(fw, recoveryMB).MinimumDiskMB().
func MinimumDiskMB(fw Firmware, recoveryMB int) uint64 {
	return LayoutFor(fw, recoveryMB).MinimumDiskMB()
}
