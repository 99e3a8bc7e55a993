package qemuvm

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// argValues returns the values of every occurrence of flag.
func argValues(args []QemuArg, flag string) []string {
	var out []string
	for _, a := range args {
		if a.Flag == flag {
			out = append(out, a.Value)
		}
	}
	return out
}

// The system disk on virtio-blk and virtio-scsi reports an 8 KiB unmap
// granularity (Windows retrims nothing below it); SATA takes none (QEMU's
// IDE device refuses anything but 512). discard=unmap stays on the drive.
func TestArgsDiscardGranularity(t *testing.T) {
	for iface, wantDevice := range map[string]string{
		DiskVirtioBlk:  "virtio-blk-pci,drive=disk0,discard_granularity=8192,bootindex=",
		DiskVirtioSCSI: "scsi-hd,drive=disk0,bus=scsi0.0,discard_granularity=8192,bootindex=",
		DiskSATA:       "ide-hd,drive=disk0,bus=ide.",
	} {
		spec := baseSpec()
		spec.DiskInterface = iface
		args, err := spec.Args()
		if err != nil {
			t.Fatal(err)
		}
		var disk string
		for _, d := range argValues(args, "-device") {
			if strings.Contains(d, "drive=disk0") {
				disk = d
			}
		}
		if !strings.HasPrefix(disk, wantDevice) {
			t.Errorf("%s: system disk device %q, want %q…", iface, disk, wantDevice)
		}
		if iface == DiskSATA && strings.Contains(disk, "discard_granularity") {
			t.Errorf("%s: %q sets a granularity QEMU's IDE device refuses", iface, disk)
		}
		var drive string
		for _, d := range argValues(args, "-drive") {
			if strings.Contains(d, "id=disk0") {
				drive = d
			}
		}
		if !strings.Contains(drive, "discard=unmap") {
			t.Errorf("%s: system drive %q lacks discard=unmap", iface, drive)
		}
	}
}

func TestArgsHyperV(t *testing.T) {
	spec := baseSpec()
	spec.Accelerator, spec.HyperV = AccelKVM, true
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := "host,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,hv-runtime,hv-synic,hv-time,hv-stimer,hv-frequencies,hv-reset"
	if got := argValues(args, "-cpu"); len(got) != 1 || got[0] != want {
		t.Errorf("-cpu %q, want %q", got, want)
	}
	spec.HyperV = false
	args, _ = spec.Args()
	if got := argValues(args, "-cpu"); len(got) != 1 || got[0] != "host" {
		t.Errorf("KVM without enlightenments: -cpu %q", got)
	}
	spec.Accelerator = AccelTCG
	args, _ = spec.Args()
	if got := argValues(args, "-cpu"); len(got) != 1 || got[0] != "max" {
		t.Errorf("TCG: -cpu %q", got)
	}
	spec.HyperV = true
	if _, err := spec.Args(); err == nil || !strings.HasPrefix(err.Error(), "hyperv_enlightenments:") {
		t.Errorf("TCG with enlightenments: %v", err)
	}
}

func TestVMConfigHyperV(t *testing.T) {
	on, off := true, false
	c := &VMConfig{Accelerator: AccelTCG, HyperVEnlightenments: &on}
	errs := c.Prepare(nil)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "hyperv_enlightenments:") {
		t.Errorf("hyperv_enlightenments = true with accelerator = tcg: %v", errs)
	}
	for _, tc := range []struct {
		setting *bool
		accel   string
		want    bool
		fails   bool
	}{
		{nil, AccelKVM, true, false},
		{nil, AccelTCG, false, false},
		{&off, AccelKVM, false, false},
		{&on, AccelKVM, true, false},
		{&on, AccelTCG, false, true},
	} {
		c := &VMConfig{HyperVEnlightenments: tc.setting}
		got, err := c.HyperV(tc.accel, "test")
		if got != tc.want || (err != nil) != tc.fails {
			t.Errorf("setting %v under %s: %v, %v", tc.setting, tc.accel, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "hyperv_enlightenments") {
			t.Errorf("error does not name the setting: %v", err)
		}
	}
}

// StepRunVM decides with the accelerator it picked and records the
// enlightenments for the manifest; an explicit `true` on a host that ends
// up under TCG stops the build before QEMU starts.
func TestStepRunVMHyperV(t *testing.T) {
	on := true
	for _, tc := range []struct {
		name    string
		vm      VMConfig
		want    []string
		cpu     string
		refused bool
	}{
		{"kvm", VMConfig{Accelerator: AccelKVM}, HyperVEnlightenments, "host,hv-relaxed", false},
		{"tcg", VMConfig{Accelerator: AccelTCG}, []string{}, "max", false},
		{"auto on a host without KVM, explicitly on", VMConfig{HyperVEnlightenments: &on}, nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, d := mockState(t)
			out := t.TempDir()
			vm := tc.vm
			vm.Firmware = FirmwareBIOS
			if errs := vm.Prepare(nil); len(errs) != 0 {
				t.Fatal(errs)
			}
			state.Put(StateDiskPath, filepath.Join(out, "win.qcow2"))
			state.Put(StateHostPort, 3000)
			noKVM := HostPaths{KVMDevice: filepath.Join(out, "no-kvm"), CPUInfo: filepath.Join(out, "no-cpuinfo")}
			step := &StepRunVM{VM: &vm, Name: "win", OutputDir: out, GuestPort: 5985, Host: noKVM}
			action := step.Run(context.Background(), state)
			defer step.Cleanup(state)
			if tc.refused {
				err, _ := state.Get("error").(error)
				if action != multistep.ActionHalt || err == nil || !strings.HasPrefix(err.Error(), "hyperv_enlightenments:") || d.StartVMArgs != nil {
					t.Fatalf("continued or started QEMU: %v, %v", action, err)
				}
				return
			}
			if action != multistep.ActionContinue {
				t.Fatal(state.Get("error"))
			}
			if got, _ := state.Get(StateHyperV).([]string); got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("recorded %q, want %q", got, tc.want)
			}
			if cpu := argValues(d.StartVMArgs, "-cpu"); len(cpu) != 1 || !strings.HasPrefix(cpu[0], tc.cpu) {
				t.Errorf("-cpu %q, want %q…", cpu, tc.cpu)
			}
		})
	}
}

// startQEMU runs the arguments of spec in a real, stopped (-S) QEMU under
// TCG and returns the driver to ask it over QMP.
func startQEMU(t *testing.T, spec VMSpec) *QemuDriver {
	t.Helper()
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	out := t.TempDir()
	spec.Disk = filepath.Join(out, "win.qcow2")
	if b, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", spec.Disk, "1G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, b)
	}
	spec.SerialLog, spec.QMPSocket, spec.PIDFile = filepath.Join(out, "serial.log"), filepath.Join(out, "qmp.sock"), filepath.Join(out, "qemu.pid")
	spec.UserArgs = [][]string{{"-S"}}
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	d := &QemuDriver{}
	if err := d.StartVM(args); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.StopVM() })
	return d
}

// qmpWhenUp runs a QMP command once QEMU's socket answers (within 30 s).
func qmpWhenUp(t *testing.T, d *QemuDriver, command string, arguments any) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		raw, err := d.qmp(ctx, command, arguments)
		if err == nil {
			return raw
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (QEMU: %v)", command, err, d.WaitVM(context.Background()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// QEMU takes the system disk's arguments and its device reports the
// granularity the guest sees.
func TestQEMUTakesDiscardGranularity(t *testing.T) {
	for _, iface := range []string{DiskVirtioBlk, DiskVirtioSCSI, DiskSATA} {
		t.Run(iface, func(t *testing.T) {
			spec := baseSpec()
			spec.Firmware, spec.TPMSocket, spec.InstallISO, spec.AnswerCD, spec.ExtraCDs = FirmwareBIOS, "", "", "", nil
			spec.DiskInterface = iface
			d := startQEMU(t, spec)
			var devices []struct{ Name, Type string }
			if err := json.Unmarshal(qmpWhenUp(t, d, "qom-list", map[string]any{"path": "/machine/peripheral-anon"}), &devices); err != nil {
				t.Fatal(err)
			}
			want := map[string]uint64{DiskVirtioBlk: 8192, DiskVirtioSCSI: 8192, DiskSATA: 512}[iface]
			wantType := map[string]string{DiskVirtioBlk: "virtio-blk-pci", DiskVirtioSCSI: "scsi-hd", DiskSATA: "ide-hd"}[iface]
			found := false
			for _, dev := range devices {
				path := "/machine/peripheral-anon/" + dev.Name
				typ := strings.TrimSuffix(strings.TrimPrefix(dev.Type, "child<"), ">")
				if typ != wantType {
					continue
				}
				var g uint64
				if err := json.Unmarshal(qmpWhenUp(t, d, "qom-get", map[string]any{"path": path, "property": "discard_granularity"}), &g); err != nil {
					t.Fatal(err)
				}
				if g != want {
					t.Errorf("%s discard_granularity %d, want %d", typ, g, want)
				}
				found = true
			}
			if !found {
				t.Fatalf("no %s device among %v", wantType, devices)
			}
		})
	}
}

// QEMU knows every enlightenment in the -cpu value winbake gives a KVM
// VM, with the value it carries: the value is split as QEMU's -cpu parser
// splits it and handed to query-cpu-model-expansion, which fails on an
// unknown flag or a value of the wrong type. (KVM does not run here;
// under TCG QEMU refuses to start a CPU with hv-vpindex at all.)
func TestQEMUKnowsTheHyperVFlags(t *testing.T) {
	spec := baseSpec()
	spec.Accelerator, spec.HyperV = AccelKVM, true
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	cpu := argValues(args, "-cpu")[0]
	model, flags, _ := strings.Cut(cpu, ",")
	props := map[string]any{}
	for _, f := range strings.Split(flags, ",") {
		name, value, hasValue := strings.Cut(f, "=")
		if !hasValue {
			props[name] = true
			continue
		}
		n, err := strconv.ParseUint(value, 0, 64)
		if err != nil {
			t.Fatalf("-cpu %s: %s=%q is not a number: %v", cpu, name, value, err)
		}
		props[name] = n
	}

	run := spec
	run.Accelerator, run.HyperV = AccelTCG, false
	run.Firmware, run.TPMSocket, run.InstallISO, run.AnswerCD, run.ExtraCDs = FirmwareBIOS, "", "", "", nil
	d := startQEMU(t, run)
	var expansion struct {
		Model struct {
			Props map[string]any `json:"props"`
		} `json:"model"`
	}
	raw := qmpWhenUp(t, d, "query-cpu-model-expansion", map[string]any{"type": "full", "model": map[string]any{"name": model, "props": props}})
	if err := json.Unmarshal(raw, &expansion); err != nil {
		t.Fatal(err)
	}
	for name, want := range props {
		got := expansion.Model.Props[name]
		if n, ok := want.(uint64); ok {
			want = float64(n)
		}
		if got != want {
			t.Errorf("%s: QEMU expanded %v, want %v", name, got, want)
		}
	}
	if _, err := d.qmp(context.Background(), "query-cpu-model-expansion", map[string]any{"type": "full", "model": map[string]any{"name": model, "props": map[string]any{"hv-relaxd": true}}}); err == nil {
		t.Error("QEMU expanded a misspelt flag: the check cannot fail")
	}
}
