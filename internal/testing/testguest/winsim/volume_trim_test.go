package winsim

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// fakeDisk is a SystemDisk with fixed discard limits that counts trims.
type fakeDisk struct {
	support DiscardSupport
	err     error

	mu     sync.Mutex
	trims  int
	freed  uint64
	trimOK error
}

func (d *fakeDisk) Discard() (DiscardSupport, error) { return d.support, d.err }

func (d *fakeDisk) TrimFreeSpace() (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trims++
	return d.freed, d.trimOK
}

const trimScript = `$ErrorActionPreference = 'Stop'; Optimize-Volume -DriveLetter C -ReTrim -Verbose`

func TestOptimizeVolumeReTrimDiscardsWhenWindowsWould(t *testing.T) {
	for _, s := range []DiscardSupport{
		{Bus: BusVirtioBlk, Granularity: 8192, MaxBytes: 1 << 31},
		{Bus: BusVirtioSCSI, Granularity: 65536, MaxBytes: 1 << 30},
		// ATA reports no granularity to Windows: a SATA disk is retrimmed
		// whatever Linux reads for it.
		{Bus: BusSATA, Granularity: 512, MaxBytes: 1 << 31},
	} {
		d := &fakeDisk{support: s, freed: 1 << 20}
		m := newMachine(t, Options{SystemDisk: d})
		r := ps(t, m, trimScript)
		want := "VERBOSE: Invoking retrim on (C:)...\r\nVERBOSE: Performing pass 1:\r\nVERBOSE: Retrim:  100% complete.\r\n"
		if r.code != 0 || r.stdout != want || r.stderr != "" || d.trims != 1 {
			t.Errorf("%+v: %v, %d trims", s, r, d.trims)
		}
	}
}

// Windows does not retrim a virtio disk whose unmap granularity is below
// 8 KiB: the storage optimizer's "Incorrect function. (0x80070001)", and
// nothing is discarded.
func TestOptimizeVolumeReTrimRefusesSmallGranularity(t *testing.T) {
	for _, s := range []DiscardSupport{
		{Bus: BusVirtioBlk, Granularity: 512, MaxBytes: 1 << 31},   // QEMU's virtio-blk default
		{Bus: BusVirtioSCSI, Granularity: 4096, MaxBytes: 1 << 30}, // QEMU's scsi-hd default
	} {
		d := &fakeDisk{support: s}
		m := newMachine(t, Options{SystemDisk: d})
		r := ps(t, m, trimScript)
		for _, want := range []string{
			"Optimize-Volume : Incorrect function. (0x80070001)",
			"+ CategoryInfo          : NotSpecified: (StorageWMI:ROOT/Microsoft/...age/MSFT_Volume) [Optimize-Volume], CimException",
			"+ FullyQualifiedErrorId : StorageWMI 4,Optimize-Volume",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%+v: stderr lacks %q: %v", s, want, r)
			}
		}
		if r.code != 1 || r.stdout != "VERBOSE: Invoking retrim on (C:)...\r\n" || d.trims != 0 {
			t.Errorf("%+v: %v, %d trims", s, r, d.trims)
		}
		// Without -ErrorAction Stop the error does not end the script.
		r = ps(t, m, `Optimize-Volume -DriveLetter C -ReTrim; 'after'`)
		if r.code != 0 || r.stdout != "after\r\n" || !strings.Contains(r.stderr, "0x80070001") {
			t.Errorf("%+v, continuing: %v", s, r)
		}
	}
}

func TestOptimizeVolumeReTrimWithoutDiscard(t *testing.T) {
	d := &fakeDisk{support: DiscardSupport{Bus: BusVirtioBlk, Granularity: 8192}}
	m := newMachine(t, Options{SystemDisk: d})
	r := ps(t, m, trimScript)
	if r.code != 1 || d.trims != 0 ||
		!strings.Contains(r.stderr, "Optimize-Volume : The volume optimization operation requested is not supported by the hardware backing the volume.") ||
		!strings.Contains(r.stderr, "StorageWMI 43022,Optimize-Volume") {
		t.Errorf("%v", r)
	}
}

// Without a disk model, or when the disk cannot be read or trimmed, the
// stand-in says so instead of pretending.
func TestOptimizeVolumeReTrimUnmodelled(t *testing.T) {
	for name, opts := range map[string]Options{
		"no disk":         {},
		"unreadable disk": {SystemDisk: &fakeDisk{err: errors.New("no sysfs")}},
		"trim fails":      {SystemDisk: &fakeDisk{support: DiscardSupport{Bus: BusSATA, MaxBytes: 1}, trimOK: errors.New("EIO")}},
	} {
		var reports []string
		opts.Failf = func(format string, args ...any) { reports = append(reports, format) }
		m := newMachine(t, opts)
		r := ps(t, m, trimScript)
		if r.code == 0 || len(m.Unsupported()) == 0 {
			t.Errorf("%s: %v, unsupported %v", name, r, m.Unsupported())
		}
	}
	m := newMachine(t, Options{SystemDisk: &fakeDisk{support: DiscardSupport{Bus: BusSATA, MaxBytes: 1}}, Failf: func(string, ...any) {}, Drives: []string{"E"}})
	if r := ps(t, m, `Optimize-Volume -DriveLetter E -ReTrim`); r.code == 0 || len(m.Unsupported()) == 0 {
		t.Errorf("retrim of E: %v", r)
	}
}
