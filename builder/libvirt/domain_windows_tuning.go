package libvirt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// systemDiskAlias is the user alias of the system disk: the id of its QEMU
// device, which <qemu:override> names.
const systemDiskAlias = "ua-winbake-disk0"

// addDiscardGranularity gives the system disk on virtio-blk or
// virtio-scsi wbcommon.DiscardGranularity, without which Windows does not
// retrim it (see there). <blockio discard_granularity> came with libvirt
// 10.0 (Debian 12 ships 9.0, whose schema lacks it), so the property is
// set on the disk's QEMU device through <qemu:override> (libvirt 8.2 and
// later), which works with either. `-set device.<id>.…` on
// <qemu:commandline> would not: libvirt passes -device as JSON, which
// -set cannot reach.
func addDiscardGranularity(d *libvirtxml.Domain, disk *libvirtxml.DomainDisk, diskInterface string) {
	if diskInterface != qemuvm.DiskVirtioBlk && diskInterface != qemuvm.DiskVirtioSCSI {
		return
	}
	disk.Alias = &libvirtxml.DomainAlias{Name: systemDiskAlias}
	if d.QEMUOverride == nil {
		d.QEMUOverride = &libvirtxml.DomainQEMUOverride{}
	}
	d.QEMUOverride.Devices = append(d.QEMUOverride.Devices, libvirtxml.DomainQEMUOverrideDevice{
		Alias: systemDiskAlias,
		Frontend: libvirtxml.DomainQEMUOverrideFrontend{Properties: []libvirtxml.DomainQEMUOverrideProperty{
			{Name: "discard_granularity", Type: "unsigned", Value: fmt.Sprint(qemuvm.DiscardGranularity)},
		}},
	})
}

// addHyperV gives a KVM domain wbcommon.HyperVEnlightenments the way
// virt-install writes them: <features><hyperv> and the hypervclock timer
// (QEMU's hv-time).
func addHyperV(d *libvirtxml.Domain) {
	on := func() *libvirtxml.DomainFeatureState { return &libvirtxml.DomainFeatureState{State: "on"} }
	d.Features.HyperV = &libvirtxml.DomainFeatureHyperV{
		Mode:        "custom",
		Relaxed:     on(),
		VAPIC:       on(),
		Spinlocks:   &libvirtxml.DomainFeatureHyperVSpinlocks{DomainFeatureState: libvirtxml.DomainFeatureState{State: "on"}, Retries: qemuvm.HyperVSpinlockRetries},
		VPIndex:     on(),
		Runtime:     on(),
		Synic:       on(),
		STimer:      &libvirtxml.DomainFeatureHyperVSTimer{DomainFeatureState: libvirtxml.DomainFeatureState{State: "on"}},
		Frequencies: on(),
		Reset:       on(),
	}
	d.Clock.Timer = append(d.Clock.Timer, libvirtxml.DomainTimer{Name: "hypervclock", Present: "yes"})
}
