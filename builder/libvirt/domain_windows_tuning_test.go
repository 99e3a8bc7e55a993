package libvirt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// The system disk on virtio gets the 8 KiB unmap granularity through
// <qemu:override> on its alias; SATA gets none. discard='unmap' stays.
func TestDomainDiscardGranularity(t *testing.T) {
	for _, iface := range []string{qemuvm.DiskVirtioBlk, qemuvm.DiskVirtioSCSI, qemuvm.DiskSATA} {
		t.Run(iface, func(t *testing.T) {
			s := baseSpec()
			s.DiskInterface = iface
			d, doc := roundTrip(t, s)
			disk := diskByDevice(d, "disk")[0]
			if disk.Driver == nil || disk.Driver.Discard != "unmap" {
				t.Errorf("system disk without discard='unmap':\n%s", doc)
			}
			if iface == qemuvm.DiskSATA {
				if d.QEMUOverride != nil || disk.Alias != nil {
					t.Errorf("SATA disk overridden:\n%s", doc)
				}
				return
			}
			if disk.Alias == nil || disk.Alias.Name != "ua-winbake-disk0" {
				t.Fatalf("system disk alias:\n%s", doc)
			}
			if d.QEMUOverride == nil || len(d.QEMUOverride.Devices) != 1 {
				t.Fatalf("no override:\n%s", doc)
			}
			o := d.QEMUOverride.Devices[0]
			if o.Alias != disk.Alias.Name || len(o.Frontend.Properties) != 1 {
				t.Fatalf("override %+v", o)
			}
			if p := o.Frontend.Properties[0]; p.Name != "discard_granularity" || p.Type != "unsigned" || p.Value != "8192" {
				t.Errorf("override property %+v", p)
			}
			if !strings.Contains(doc, `<override xmlns="http://libvirt.org/schemas/domain/qemu/1.0">`) {
				t.Errorf("override outside the qemu namespace:\n%s", doc)
			}
			// The user-mode NIC's command line survives next to it.
			if d.QEMUCommandline == nil || len(d.QEMUCommandline.Args) != 4 {
				t.Errorf("qemu:commandline lost:\n%s", doc)
			}
		})
	}
}

func TestDomainHyperV(t *testing.T) {
	s := baseSpec()
	s.Type, s.HyperV = "kvm", true
	d, doc := roundTrip(t, s)
	h := d.Features.HyperV
	if h == nil || h.Mode != "custom" {
		t.Fatalf("no <hyperv mode='custom'>:\n%s", doc)
	}
	for name, st := range map[string]string{
		"relaxed": h.Relaxed.State, "vapic": h.VAPIC.State, "spinlocks": h.Spinlocks.State, "vpindex": h.VPIndex.State,
		"runtime": h.Runtime.State, "synic": h.Synic.State, "stimer": h.STimer.State, "frequencies": h.Frequencies.State, "reset": h.Reset.State,
	} {
		if st != "on" {
			t.Errorf("%s is %q:\n%s", name, st, doc)
		}
	}
	if h.Spinlocks.Retries != 8191 {
		t.Errorf("spinlocks retries %d", h.Spinlocks.Retries)
	}
	clock := 0
	for _, tm := range d.Clock.Timer {
		if tm.Name == "hypervclock" && tm.Present == "yes" {
			clock++
		}
	}
	if clock != 1 {
		t.Errorf("hypervclock timers: %d\n%s", clock, doc)
	}

	s.HyperV = false
	if d, doc := roundTrip(t, s); d.Features.HyperV != nil || len(d.Clock.Timer) != 0 {
		t.Errorf("enlightenments without HyperV:\n%s", doc)
	}
	s.Type, s.HyperV = "qemu", true
	if _, err := s.Domain(); err == nil || !strings.HasPrefix(err.Error(), "hyperv_enlightenments:") {
		t.Errorf("a TCG domain with enlightenments: %v", err)
	}
}

// The domain XML with the enlightenments and the granularity override
// validates against the domain schema of the libvirt installed here
// (virt-xml-validate; Debian 12: libvirt 9.0), which rejects an unknown
// feature or libvirt 10's <blockio discard_granularity>.
func TestDomainValidatesAgainstLibvirtSchema(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Fatal("virt-xml-validate needs xmllint: install libxml2-utils (scripts/deps.sh)")
	}
	validate := func(name, doc string) error {
		path := filepath.Join(t.TempDir(), name+".xml")
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("virt-xml-validate", path, "domain").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, iface := range []string{qemuvm.DiskVirtioBlk, qemuvm.DiskVirtioSCSI, qemuvm.DiskSATA} {
		for _, typ := range []string{"kvm", "qemu"} {
			s := baseSpec()
			s.Type, s.HyperV, s.DiskInterface = typ, typ == "kvm", iface
			_, doc := roundTrip(t, s)
			if err := validate(typ+"-"+iface, doc); err != nil {
				t.Errorf("%s domain on %s does not validate: %v\n%s", typ, iface, err, doc)
			}
		}
	}
	s := baseSpec()
	s.Type, s.HyperV = "kvm", true
	_, doc := roundTrip(t, s)
	bad := strings.Replace(doc, "<relaxed ", "<relaxd ", 1)
	bad = strings.Replace(bad, "</relaxed>", "</relaxd>", 1)
	if validate("misspelt", bad) == nil {
		t.Error("a misspelt enlightenment validated: the check cannot fail")
	}
}
