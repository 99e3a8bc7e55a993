package winsim

import (
	"fmt"
	"strings"
)

// Optimize-Volume -ReTrim: Windows hands the free clusters of a volume
// back to its disk with unmap (TRIM) requests, which a qcow2 disk attached
// with discard=unmap turns into deallocated clusters. Whether Windows
// does so depends on the disk, which the machine does not own: the stand-in
// VM supplies it (SystemDisk: the real disk of its Windows partition); an
// in-process machine has none and reports the cmdlet as not modelled.

// RetrimMinGranularity is the smallest unmap granularity a virtio disk may
// report for Windows to retrim it. Below it, the storage optimizer fails
// with ERROR_INVALID_FUNCTION (0x80070001) and discards nothing:
// virtio-win/kvm-guest-drivers-windows#1574 (vioscsi and viostor guests
// since the May 2026 cumulative update, Event 264 "The storage optimizer
// couldn't complete retrim on (C:) because: Incorrect function.
// (0x80070001)"; 32 KiB and 64 KiB granularities fix it) and
// rgl/terraform-libvirt-ansible-windows-example main.tf ("ssd trim is only
// available when discard_granularity is set to 8K (or higher), otherwise,
// defrag.exe C: /H /L fails as: Incorrect function. (0x80070001)").
const RetrimMinGranularity = 8192

// Disk buses of DiscardSupport.Bus.
const (
	BusVirtioBlk  = "virtio-blk"
	BusVirtioSCSI = "virtio-scsi"
	BusSATA       = "sata"
)

// DiscardSupport is what a disk tells Windows about unmap requests.
type DiscardSupport struct {
	// Bus is the disk's bus: BusVirtioBlk (viostor), BusVirtioSCSI
	// (vioscsi) or BusSATA (storahci).
	Bus string
	// Granularity is the unmap granularity the disk reports, in bytes.
	Granularity uint64
	// MaxBytes is the largest unmap the disk takes; 0 when it takes none.
	MaxBytes uint64
}

// SystemDisk is the disk drive C: lives on.
type SystemDisk interface {
	// Discard reports how the disk takes unmap requests.
	Discard() (DiscardSupport, error)
	// TrimFreeSpace discards the free clusters of C: on the disk and
	// returns how many bytes it discarded.
	TrimFreeSpace() (uint64, error)
}

// retrimRefusal is the Windows error for a retrim of a disk that takes
// unmap requests but that Windows will not retrim, or "" when it does.
//
// On SATA there is no granularity to refuse: ATA's TRIM reports none to
// Windows (QEMU's IDE device takes only 512, "discard_granularity must be
// 512 for ide"), and a Windows 11 guest on a SATA disk without one retrims
// (kvm-guest-drivers-windows#666, 2026-08-16: "VERBOSE: Retrim: 100%
// complete.").
func retrimRefusal(d DiscardSupport) string {
	if d.Bus != BusSATA && d.Granularity < RetrimMinGranularity {
		return "Incorrect function. (0x80070001)"
	}
	return ""
}

// optimizeVolumeReTrim runs `Optimize-Volume -DriveLetter <d> -ReTrim`.
//
// The failures are CimExceptions of the Storage module (its CDXML calls
// MSFT_Volume.Optimize), laid out as Windows shows them in
// kvm-guest-drivers-windows#392: "Optimize-Volume : The volume
// optimization operation requested is not supported by the hardware
// backing the volume." with CategoryInfo "NotSpecified:
// (StorageWMI:ROOT/Microsoft/...age/MSFT_Volume) [Optimize-Volume],
// CimException" and FullyQualifiedErrorId "StorageWMI 43022,Optimize-Volume"
// for a disk that takes no unmap at all. For a refused retrim the message
// is the storage optimizer's own text (defrag.exe and Event 264 above); no
// public capture shows the cmdlet's record for it, so its error id is
// MSFT_Volume.Optimize's documented generic "Failed (4)" (Microsoft's
// "Optimize method of the MSFT_Volume class").
func optimizeVolumeReTrim(c *psCall, drive string) ([]any, error) {
	if drive != "C" {
		return nil, &psUnsupported{msg: fmt.Sprintf("Optimize-Volume -ReTrim on %s: (the stand-in models the disk of C: only)", drive), at: c.e.at}
	}
	disk := c.rt.m.opts.SystemDisk
	if disk == nil {
		return nil, &psUnsupported{msg: "Optimize-Volume -ReTrim: this machine has no model of the disk behind C: (winsim.Options.SystemDisk)", at: c.e.at}
	}
	support, err := disk.Discard()
	if err != nil {
		return nil, &psUnsupported{msg: fmt.Sprintf("Optimize-Volume -ReTrim: reading the disk's discard limits: %v", err), at: c.e.at}
	}
	p := c.rt.p
	storageError := func(message, code string) error {
		return c.nonTerminating(&psErrorRecord{
			message: message, category: "NotSpecified", target: "StorageWMI", targetType: "ROOT/Microsoft/...age/MSFT_Volume",
			exception: "CimException", fqid: "StorageWMI " + code + ",Optimize-Volume",
		})
	}
	if support.MaxBytes == 0 {
		return nil, storageError("The volume optimization operation requested is not supported by the hardware backing the volume.", "43022")
	}
	verbose := c.flag("verbose")
	if verbose {
		p.print(p.stdout, fmt.Sprintf("VERBOSE: Invoking retrim on (%s:)...\r\n", drive))
	}
	if refusal := retrimRefusal(support); refusal != "" {
		c.rt.m.logf("Optimize-Volume -ReTrim %s: refused, the %s disk reports an unmap granularity of %d bytes (Windows retrims from %d)", drive, support.Bus, support.Granularity, RetrimMinGranularity)
		return nil, storageError(refusal, "4")
	}
	trimmed, err := disk.TrimFreeSpace()
	if err != nil {
		return nil, &psUnsupported{msg: fmt.Sprintf("Optimize-Volume -ReTrim: discarding the free space of %s: %v", drive, err), at: c.e.at}
	}
	c.rt.m.logf("Optimize-Volume -ReTrim %s: %d bytes of free space discarded on the %s disk (granularity %d)", drive, trimmed, support.Bus, support.Granularity)
	if verbose {
		p.print(p.stdout, "VERBOSE: Performing pass 1:\r\nVERBOSE: Retrim:  100% complete.\r\n")
	}
	return nil, nil
}

// driveLetter is Optimize-Volume's -DriveLetter as Windows reads it.
func driveLetter(s string) string { return strings.ToUpper(strings.TrimSuffix(s, ":")) }
