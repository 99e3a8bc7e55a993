package qemuvm

import (
	"fmt"
	"strings"
)

// StateHyperV holds the []string of Hyper-V enlightenments the VM runs
// with (HyperVRecord), for the manifest.
const StateHyperV = "hyperv_enlightenments"

// HyperVSpinlockRetries is the spinlock retry count Windows is told to
// try before it notifies the hypervisor (hv-spinlocks=0x1fff): Proxmox's
// value, and virt-install's 8191.
const HyperVSpinlockRetries = 0x1fff

// HyperVEnlightenments are the Hyper-V enlightenments Windows gets under
// KVM, as QEMU CPU flags; winbake-libvirt asks libvirt for the same ones
// (<features><hyperv> and the hypervclock timer, which is hv-time).
//
// KVM implements them for Windows guests, which otherwise run slower and
// fall back to the HPET or the RTC for their timers (QEMU's
// docs/system/i386/hyperv.rst, which recommends enabling them all for
// Windows). virt-install turns on relaxed, vapic, spinlocks (8191) and the
// hypervclock timer for Windows (virt-manager virtinst/domain/features.py
// and clock.py, set_defaults); Proxmox adds vpindex, runtime, synic,
// stimer and reset under KVM (qemu-server PVE/QemuServer/CPUConfig.pm,
// add_hyperv_enlightenments). Each one's requirements come before it
// (hv-synic needs hv-vpindex; hv-stimer needs hv-vpindex, hv-synic and
// hv-time). TCG provides none of them: QEMU refuses hv-vpindex without
// KVM ("kernel doesn't allow setting HyperV VP_INDEX").
var HyperVEnlightenments = []string{
	"hv-relaxed",
	"hv-vapic",
	fmt.Sprintf("hv-spinlocks=%#x", HyperVSpinlockRetries),
	"hv-vpindex",
	"hv-runtime",
	"hv-synic",
	"hv-time",
	"hv-stimer",
	"hv-frequencies",
	"hv-reset",
}

// HyperV decides whether a VM on accel gets the Hyper-V enlightenments:
// by default only under KVM; `hyperv_enlightenments = false` never;
// `true` fails on anything but KVM, which alone provides them.
func (c *VMConfig) HyperV(accel, why string) (bool, error) {
	switch {
	case c.HyperVEnlightenments == nil:
		return accel == AccelKVM, nil
	case !*c.HyperVEnlightenments:
		return false, nil
	case accel != AccelKVM:
		return false, fmt.Errorf("hyperv_enlightenments: true needs KVM, but the VM runs under %s (%s); QEMU provides the enlightenments only with KVM; remove hyperv_enlightenments or use a KVM host", accel, why)
	}
	return true, nil
}

// hypervCPU is the -cpu value for a KVM VM with the enlightenments.
func hypervCPU(model string) string {
	return model + "," + strings.Join(HyperVEnlightenments, ",")
}

// HyperVRecord is the manifest's `hyperv_enlightenments`: the
// enlightenments a VM ran with, empty (not absent) when it ran without.
func HyperVRecord(on bool) []string {
	if !on {
		return []string{}
	}
	return append([]string(nil), HyperVEnlightenments...)
}
