package qemuvm

import "fmt"

// DiscardGranularity is the unmap granularity, in bytes, winbake's VMs
// report for the system disk on virtio-blk and virtio-scsi.
//
// Windows does not retrim a disk that reports a smaller one: `defrag C: /H
// /L` (the engine behind `Optimize-Volume -ReTrim`) then fails with
// "Incorrect function. (0x80070001)" and the free space is never handed
// back, so the image keeps every cluster Windows once wrote. QEMU's
// defaults are the logical block size for virtio-blk (512, QEMU's
// virtio_blk_update_config) and 4 KiB for scsi-hd, both too small. Sources:
// virtio-win/kvm-guest-drivers-windows#1574 (vioscsi and viostor guests
// stopped trimming with the May 2026 cumulative update; Event 264 "The
// storage optimizer couldn't complete retrim on (C:) because: Incorrect
// function. (0x80070001)"; a discard_granularity of 32K or 64K brings the
// trim back), and rgl/terraform-libvirt-ansible-windows-example main.tf,
// whose system disk gets `discard_granularity = 8 * 1024` because "ssd trim
// is only available when discard_granularity is set to 8K (or higher),
// otherwise, defrag.exe C: /H /L fails as: Incorrect function.
// (0x80070001)".
//
// SATA disks get none: QEMU's IDE device refuses any granularity but 512
// ("discard_granularity must be 512 for ide"), ATA's TRIM reports none to
// Windows, and a Windows guest on a SATA disk retrims without one
// (kvm-guest-drivers-windows#666, 2026-08-16).
const DiscardGranularity = 8192

// discardGranularityProperty is the QEMU device property that sets
// DiscardGranularity on the system disk of the bus, "" for a bus that
// takes none.
func discardGranularityProperty(diskInterface string) string {
	switch diskInterface {
	case DiskVirtioBlk, DiskVirtioSCSI:
		return fmt.Sprintf("discard_granularity=%d", DiscardGranularity)
	}
	return ""
}
