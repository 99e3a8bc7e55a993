//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/winbake/packer-plugin-winbake/builder/libvirt"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/standin"
	"github.com/winbake/packer-plugin-winbake/internal/testing/vmslot"
)

// The lab's libvirtd (Debian 12: libvirt 9.0, without <blockio
// discard_granularity>) takes winbake-libvirt's domain with the
// <qemu:override> of the system disk, and the QEMU it starts gives the
// disk's device the 8 KiB unmap granularity Windows needs to retrim.
func TestLibvirtSystemDiskDiscardGranularity(t *testing.T) {
	t.Parallel()
	vmslot.Acquire(t) // starts QEMU
	l := libvirtLab(t)
	pool := poolWithDisk(t, l)
	for _, iface := range []string{qemuvm.DiskVirtioBlk, qemuvm.DiskVirtioSCSI} {
		t.Run(iface, func(t *testing.T) {
			port, err := standin.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			spec := libvirt.DomainSpec{
				Name: "winbake-e2e-granularity-" + iface, Type: "qemu", Machine: "q35", CPUs: 1, MemoryMB: 256,
				Firmware: qemuvm.FirmwareBIOS, Pool: pool, Disk: "win.qcow2", DiskInterface: iface, NetDevice: qemuvm.NetE1000,
				MAC: "52:54:00:0a:0b:0c", NetworkMode: libvirt.NetUser, ForwardAddress: "127.0.0.1", HostPort: port, GuestPort: 5985,
			}
			d, err := spec.Domain()
			if err != nil {
				t.Fatal(err)
			}
			doc, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			dom, err := l.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
			if err != nil {
				t.Fatalf("libvirt refused the domain: %v\n%s", err, doc)
			}
			t.Cleanup(func() { _ = l.DomainUndefineFlags(dom, 0) })
			if _, err := l.DomainCreateWithFlags(dom, uint32(golibvirt.DomainStartPaused)); err != nil {
				t.Fatalf("starting the domain: %v\n%s", err, doc)
			}
			t.Cleanup(func() { _ = l.DomainDestroy(dom) })
			cmd := fmt.Sprintf(`{"execute":"qom-get","arguments":{"path":"/machine/peripheral/%s","property":"discard_granularity"}}`, "ua-winbake-disk0")
			out, err := l.QEMUDomainMonitorCommand(dom, cmd, 0)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Return *uint64 `json:"return"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil || r.Return == nil || *r.Return != qemuvm.DiscardGranularity {
				t.Errorf("the system disk's discard_granularity: %s (%v), want %d", out, err, qemuvm.DiscardGranularity)
			}
		})
	}
}

// poolWithDisk is a test pool holding an empty 1 GiB qcow2 volume
// win.qcow2.
func poolWithDisk(t *testing.T, l *golibvirt.Libvirt) string {
	t.Helper()
	pool := testPool(t, l)
	p, err := l.StoragePoolLookupByName(pool)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := (&libvirtxml.StorageVolume{Name: "win.qcow2", Capacity: &libvirtxml.StorageVolumeSize{Value: 1, Unit: "GiB"},
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.StorageVolCreateXML(p, vol, 0); err != nil {
		t.Fatal(err)
	}
	return pool
}

// A kvm domain with winbake-libvirt's Hyper-V enlightenments is taken by
// the lab's libvirtd (KVM cannot run here, so it is defined, not started),
// and libvirt turns the features into the same QEMU CPU flags winbake-qemu
// passes (virsh domxml-to-native).
func TestLibvirtHyperVDomain(t *testing.T) {
	t.Parallel()
	l := libvirtLab(t)
	pool := poolWithDisk(t, l)
	port, err := standin.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	spec := libvirt.DomainSpec{
		Name: "winbake-e2e-hyperv", Type: "kvm", HyperV: true, Machine: "q35", CPUs: 1, MemoryMB: 256,
		Firmware: qemuvm.FirmwareBIOS, Pool: pool, Disk: "win.qcow2", DiskInterface: qemuvm.DiskVirtioBlk, NetDevice: qemuvm.NetE1000,
		MAC: "52:54:00:0a:0b:0d", NetworkMode: libvirt.NetUser, ForwardAddress: "127.0.0.1", HostPort: port, GuestPort: 5985,
	}
	d, err := spec.Domain()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dom, err := l.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
	if err != nil {
		t.Fatalf("libvirt refused the domain: %v\n%s", err, doc)
	}
	_ = l.DomainUndefineFlags(dom, 0)

	argv, err := l.ConnectDomainXMLToNative("qemu-argv", doc, 0)
	if err != nil {
		t.Fatalf("domxml-to-native: %v", err)
	}
	fields := strings.Fields(argv)
	i := slices.Index(fields, "-cpu")
	if i < 0 || i+1 >= len(fields) {
		t.Fatalf("no -cpu in %s", argv)
	}
	t.Logf("libvirt: -cpu %s", fields[i+1])
	got := map[string]bool{}
	for _, f := range strings.Split(fields[i+1], ",")[1:] {
		got[strings.TrimSuffix(f, "=on")] = true
	}
	for _, want := range qemuvm.HyperVEnlightenments {
		if !got[want] {
			t.Errorf("libvirt's -cpu %s lacks %s", fields[i+1], want)
		}
	}
}
