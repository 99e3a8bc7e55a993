package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdomanski/iso9660"
	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/setup"
	"github.com/winbake/packer-plugin-winbake/internal/testing/vmslot"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// The VM tests boot the stand-in ISO under QEMU/TCG, one VM at a time. They
// need the ISO: make standin-iso (or WINBAKE_STANDIN_ISO=<path>).

// Timeouts per boot stage under TCG on a shared 2-core machine (targets:
// BIOS boot 20 s, UEFI+TPM boot 40 s).
const (
	biosStage = 120 * time.Second
	uefiStage = 180 * time.Second
)

var (
	timingsMu sync.Mutex
	timings   []string
)

func record(t *testing.T, what string, d time.Duration) {
	t.Helper()
	line := fmt.Sprintf("%-60s %6.1f s", t.Name()+": "+what, d.Seconds())
	t.Logf("timing: %s", line)
	timingsMu.Lock()
	timings = append(timings, line)
	timingsMu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(timings) > 0 {
		fmt.Println("stand-in boot timings (QEMU start to the event):")
		for _, l := range timings {
			fmt.Println("  " + l)
		}
	}
	os.Exit(code)
}

func isoPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU: not with -short")
	}
	vmslot.Acquire(t) // the test boots the stand-in
	return isoFile(t)
}

// isoFile is the stand-in ISO, for tests that read it without booting it.
func isoFile(t *testing.T) string {
	t.Helper()
	p := os.Getenv("WINBAKE_STANDIN_ISO")
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "build", "standin", "winbake-standin.iso")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the stand-in ISO is missing (%v): run make standin-iso first, or set WINBAKE_STANDIN_ISO", err)
	}
	return p
}

func settings(fw unattend.Firmware) unattend.Settings {
	return unattend.Settings{
		Firmware:     fw,
		ImageName:    "Windows Server 2022 SERVERSTANDARDCORE",
		Password:     "Winbake-Standin-1",
		ComputerName: "STANDIN",
		TimeZone:     "W. Europe Standard Time",
	}
}

func render(t *testing.T, s unattend.Settings) []byte {
	t.Helper()
	b, err := unattend.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// virtioCD builds a small virtio-win ISO with the Server 2022 amd64
// folders of viostor, vioscsi and NetKVM.
func virtioCD(t *testing.T) string {
	t.Helper()
	files := map[string][]byte{}
	for _, d := range []string{"viostor", "vioscsi", "NetKVM"} {
		files[d+"/2k22/amd64/"+strings.ToLower(d)+".inf"] = []byte("; winbake stand-in test driver\r\n")
	}
	p := filepath.Join(t.TempDir(), "virtio-win.iso")
	if err := AnswerCD(p, "virtio-win-0.1.266", files); err != nil {
		t.Fatal(err)
	}
	return p
}

// pathTablelessVirtioCD is virtioCD written with
// github.com/kdomanski/iso9660, which records an empty path table: Windows
// finds none of its folders.
func pathTablelessVirtioCD(t *testing.T) string {
	t.Helper()
	w, err := iso9660.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Cleanup() }()
	for _, d := range []string{"viostor", "vioscsi", "NetKVM"} {
		if err := w.AddFile(strings.NewReader("; winbake stand-in test driver\r\n"), d+"/2k22/amd64/"+strings.ToLower(d)+".inf"); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "virtio-win-no-path-table.iso")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := w.WriteTo(f, "virtio-win-0.1.266"); err != nil {
		t.Fatal(err)
	}
	return p
}

func start(t *testing.T, cfg Config) *VM {
	t.Helper()
	cfg.Logf = t.Logf
	vm, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Close)
	return vm
}

// wait waits for a line containing want and fails on a Setup error line
// (unless want is one).
func wait(t *testing.T, vm *VM, timeout time.Duration, from int, want ...string) (string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, i, d, err := vm.WaitLine(ctx, from, append(want, setup.ErrorMarker)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, setup.ErrorMarker) && !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(line, w) }) {
		t.Fatalf("Setup failed: %s\nserial log tail:\n%s", line, vm.Tail(20))
	}
	return line, i, d
}

// winrmClient is Packer's WinRM client (masterzen, Basic auth) through
// the VM's port forward.
func winrmClient(t *testing.T, vm *VM, user, password string) *winrm.Client {
	t.Helper()
	params := *winrm.DefaultParameters
	params.Timeout = "PT60S"
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: "127.0.0.1", Port: vm.WinRMPort, Timeout: 90 * time.Second}, user, password, &params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// winrmRun runs a command over WinRM and returns its standard output.
func winrmRun(t *testing.T, c *winrm.Client, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, errOut, code, err := c.RunCmdWithContext(ctx, command)
	if err != nil || code != 0 {
		t.Fatalf("WinRM %q: exit %d, %v; stderr %q", command, code, err, errOut)
	}
	return out
}

// checkWinRM logs on over WinRM and expects the computer name.
func checkWinRM(t *testing.T, vm *VM, user, password, computerName string) {
	t.Helper()
	if out := winrmRun(t, winrmClient(t, vm, user, password), "hostname"); !strings.EqualFold(strings.TrimSpace(out), computerName) {
		t.Fatalf("hostname over WinRM = %q, want %s", out, computerName)
	}
}

// powerCommand starts shutdown.exe over WinRM; the connection may drop
// while Windows goes down.
// bootTime asks winbake-agent in the guest for LastBootUpTime over WinRM.
func bootTime(t *testing.T, vm *VM, user, password string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, code, err := winrmClient(t, vm, user, password).RunCmdWithContext(ctx, testguest.AgentPath+" boot-time")
	if err != nil || code != 0 {
		t.Fatalf("winbake-agent boot-time: exit %d, %v: %s", code, err, errOut)
	}
	var res agent.BootTimeResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.OK || res.BootTime.IsZero() {
		t.Fatalf("winbake-agent boot-time answered %q (%v)", out, err)
	}
	return res.BootTime
}

func powerCommand(t *testing.T, vm *VM, user, password, command string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, errOut, code, err := winrmClient(t, vm, user, password).RunCmdWithContext(ctx, command)
	if err == nil && code != 0 {
		t.Fatalf("%s: exit %d: %s", command, code, errOut)
	}
}

// checkWinRMClosed expects nothing to listen behind the port forward: QEMU's
// user networking accepts the connection and closes it at once.
func checkWinRMClosed(t *testing.T, vm *VM) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/wsman", vm.WinRMPort))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("WinRM port answered HTTP %d; want no service", resp.StatusCode)
	}
}

func rawImage(t *testing.T, disk string) *Image {
	t.Helper()
	img, err := RawImage(disk, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func stateOf(t *testing.T, img *Image, partition int) *setup.State {
	t.Helper()
	st, err := img.State(partition)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBIOSVirtioCD: BIOS, answer file on a CD, virtio disk with the drivers
// from a virtio-win CD. Setup finishes, WinRM comes up; `shutdown /r` over
// WinRM restarts the guest in the same QEMU process, `shutdown /s` ends the
// process, and the disk then boots on its own.
func TestBIOSVirtioCD(t *testing.T) {
	iso := isoPath(t)
	s := settings(unattend.FirmwareBIOS)
	s.VirtioFolder = "2k22"
	s.AllowICMP = true
	s.ExtraCommands = []string{`cmd.exe /c mkdir C:\build`}
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	vm := start(t, Config{ISO: iso, AnswerFile: render(t, s), CDs: []string{virtioCD(t)}, Disk: disk, Firmware: BIOS})

	_, i, d := wait(t, vm, biosStage, 0, setup.WindowsPEDoneLine)
	record(t, "windowsPE done (ISO boot, Setup, partitioning)", d)
	_, i, d = wait(t, vm, biosStage, i, setup.SetupCompleteLine)
	record(t, "Setup complete (restart, specialize, oobeSystem)", d)
	_, i, d = wait(t, vm, 30*time.Second, i, setup.WinRMListeningPrefix)
	record(t, "WinRM listening", d)
	checkWinRM(t, vm, "Administrator", s.Password, "STANDIN")
	bootBefore := bootTime(t, vm, "Administrator", s.Password)

	powerCommand(t, vm, "Administrator", s.Password, "shutdown /r /t 0")
	_, i, _ = wait(t, vm, 60*time.Second, i, setup.RestartLine)
	restart := time.Since(vm.Started)
	_, j, d := wait(t, vm, biosStage, i, setup.WinRMListeningPrefix)
	record(t, "restart over WinRM: WinRM listening again (since the restart)", d-restart)
	_, i, _ = wait(t, vm, 30*time.Second, j, setup.ReadyLine)
	checkWinRM(t, vm, "Administrator", s.Password, "STANDIN")
	if bootAfter := bootTime(t, vm, "Administrator", s.Password); !bootAfter.After(bootBefore) {
		t.Errorf("boot time after the restart %s is not later than before it %s", bootAfter, bootBefore)
	}

	powerCommand(t, vm, "Administrator", s.Password, "shutdown /s /t 0")
	wait(t, vm, 60*time.Second, i, setup.PowerOffLine)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("QEMU after shutdown /s: %v", err)
	}
	record(t, "QEMU exited after shutdown /s", time.Since(vm.Started))
	vm.Close()

	img := rawImage(t, disk)
	if img.Style != setup.StyleMBR || len(img.Partitions) != 1 || img.Partitions[0].Type != "0x07" || !img.Partitions[0].Active {
		t.Fatalf("partitions = %s %+v, want MBR with one active 0x07 partition", img.Style, img.Partitions)
	}
	if strings.Trim(string(img.BootCode), "\x00") == "" {
		t.Error("no boot code in the MBR")
	}
	st := stateOf(t, img, 1)
	if st.Phase != setup.PhaseComplete || st.ComputerName != "STANDIN" || st.TimeZone != s.TimeZone ||
		st.Image.Name != s.ImageName || st.Image.Version != "10.0.20348.587" || st.Boots != 2 || st.Firmware != setup.FirmwareBIOS {
		t.Errorf("state = phase %q, name %q, tz %q, image %+v, boots %d, firmware %q", st.Phase, st.ComputerName, st.TimeZone, st.Image, st.Boots, st.Firmware)
	}
	for _, drv := range []string{"viostor", "vioscsi", "netkvm"} {
		if !slices.Contains(st.Drivers, drv) {
			t.Errorf("drivers %q lack %s", st.Drivers, drv)
		}
	}
	w := st.WinRM
	if len(w.Listeners) != 1 || !w.Auth.Basic || !w.AllowUnencrypted || w.StartMode != "delayed-auto" || !w.LocalAccountTokenFilterPolicy {
		t.Errorf("WinRM state = %+v", w)
	}
	if n := len(st.Commands); n != len(s.SpecializeCommands())+len(s.FirstLogonCommands()) {
		t.Errorf("%d commands recorded, want %d", n, len(s.SpecializeCommands())+len(s.FirstLogonCommands()))
	}

	// The disk alone: no ISO, no answer file, no driver CD.
	vm2 := start(t, Config{Disk: disk, Firmware: BIOS})
	_, _, d = wait(t, vm2, biosStage, 0, setup.ReadyLine)
	record(t, "disk alone: Windows ready", d)
	wait(t, vm2, 10*time.Second, 0, setup.WinRMListeningPrefix)
	checkWinRM(t, vm2, "Administrator", s.Password, "STANDIN")
	if strings.Contains(vm2.Serial(), "setup: windowsPE") || strings.Contains(vm2.Serial(), "setup: oobeSystem") {
		t.Error("Setup ran again when the installed disk booted")
	}

	// sysprep /generalize /oobe /shutdown powers off; the next boot runs
	// specialize and oobeSystem again.
	powerCommand(t, vm2, "Administrator", s.Password, `C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown /quiet`)
	wait(t, vm2, 60*time.Second, 0, setup.PowerOffLine)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := vm2.Wait(ctx); err != nil {
		t.Fatalf("QEMU after sysprep /shutdown: %v", err)
	}
	vm2.Close()
	if st := stateOf(t, rawImage(t, disk), 1); st.Boots != 3 || st.Phase != setup.PhaseComplete || st.Sysprep != "generalized" {
		t.Errorf("after sysprep: boots %d, phase %q, sysprep %q", st.Boots, st.Phase, st.Sysprep)
	}
	vm3 := start(t, Config{Disk: disk, Firmware: BIOS})
	_, i, d = wait(t, vm3, biosStage, 0, setup.SetupCompleteLine)
	record(t, "generalized disk: specialize and oobeSystem done", d)
	wait(t, vm3, 30*time.Second, i, setup.WinRMListeningPrefix)
	checkWinRM(t, vm3, "Administrator", s.Password, "STANDIN")
	vm3.Close()
	if st := stateOf(t, rawImage(t, disk), 1); st.Boots != 4 || st.Phase != setup.PhaseComplete || st.Sysprep != "" {
		t.Errorf("after the generalized boot: boots %d, phase %q, sysprep %q", st.Boots, st.Phase, st.Sysprep)
	}
}

// TestUEFISecureBootVirtioCDTPM: UEFI with Secure Boot enforced (Microsoft's
// keys) and a TPM, answer file on a CD, virtio-scsi disk (vioscsi), a
// recovery partition before Windows. The ISO's signed chain boots, Setup
// sees Secure Boot on, the GPT carries Windows' types, the ESP the signed
// chain (shim as \EFI\BOOT\BOOTX64.EFI, GRUB beside it), and the disk boots
// on its own under Secure Boot.
func TestUEFISecureBootVirtioCDTPM(t *testing.T) {
	iso := isoPath(t)
	s := settings(unattend.FirmwareUEFI)
	s.ImageName = "Windows Server 2022 SERVERDATACENTER"
	s.VirtioFolder = "2k22"
	s.RecoveryPartitionMB = 300
	s.Username = "winbake"
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	vm := start(t, Config{ISO: iso, AnswerFile: render(t, s), CDs: []string{virtioCD(t)}, Disk: disk, DiskBus: BusVirtioSCSI, Firmware: UEFI, SecureBoot: true})

	_, i, d := wait(t, vm, uefiStage, 0, "Secure Boot on")
	record(t, "Setup started with Secure Boot on", d)
	_, i, d = wait(t, vm, uefiStage, i, setup.WindowsPEDoneLine)
	record(t, "windowsPE done (ISO boot, Setup, partitioning)", d)
	_, i, d = wait(t, vm, uefiStage, i, setup.SetupCompleteLine)
	record(t, "Setup complete (restart, specialize, oobeSystem)", d)
	_, _, d = wait(t, vm, 30*time.Second, i, setup.WinRMListeningPrefix)
	record(t, "WinRM listening", d)
	checkWinRM(t, vm, "winbake", s.Password, "STANDIN")
	vm.Close()

	img := rawImage(t, disk)
	want := []struct {
		typ    string
		sizeMB uint64
	}{{setup.GPTTypeEFI, 100}, {setup.GPTTypeMSR, 16}, {setup.GPTTypeRecovery, 300}, {setup.GPTTypeBasicData, 0}}
	if img.Style != setup.StyleGPT || len(img.Partitions) != len(want) {
		t.Fatalf("partitions = %s %+v", img.Style, img.Partitions)
	}
	for i, w := range want {
		p := img.Partitions[i]
		if p.Type != w.typ || (w.sizeMB != 0 && p.Size != w.sizeMB<<20) {
			t.Errorf("partition %d = type %s, %d bytes; want %s, %d MB", i+1, p.Type, p.Size, w.typ, w.sizeMB)
		}
	}
	if img.Partitions[2].Attrs != 0x8000000000000001 {
		t.Errorf("recovery partition attributes %#x", img.Partitions[2].Attrs)
	}
	for _, dir := range []string{"EFI/BOOT", "EFI/Microsoft/Boot"} {
		ls, err := img.List(1, dir)
		if err != nil || !strings.Contains(strings.ToUpper(ls), "GRUBX64.EFI") ||
			(!strings.Contains(strings.ToUpper(ls), "BOOTX64.EFI") && !strings.Contains(strings.ToUpper(ls), "BOOTMGFW.EFI")) {
			t.Errorf("ESP %s: %q %v", dir, ls, err)
		}
	}
	st := stateOf(t, img, 4)
	if st.Phase != setup.PhaseComplete || st.Firmware != setup.FirmwareUEFI || !st.SecureBoot || st.Image.Name != s.ImageName {
		t.Errorf("state: phase %q firmware %q secure boot %v image %q", st.Phase, st.Firmware, st.SecureBoot, st.Image.Name)
	}
	if len(st.Accounts) != 1 || st.Accounts[0].Name != "winbake" || st.Accounts[0].Password != s.Password {
		t.Errorf("accounts = %+v", st.Accounts)
	}

	vm2 := start(t, Config{Disk: disk, DiskBus: BusVirtioSCSI, Firmware: UEFI, SecureBoot: true})
	_, _, d = wait(t, vm2, uefiStage, 0, setup.ReadyLine)
	record(t, "disk alone: Windows ready", d)
	wait(t, vm2, 10*time.Second, 0, setup.WinRMListeningPrefix)
	checkWinRM(t, vm2, "winbake", s.Password, "STANDIN")
}

// TestBIOSFloppySATA: BIOS, answer file on a floppy, SATA disk and e1000
// NIC, no virtio drivers at all.
func TestBIOSFloppySATA(t *testing.T) {
	iso := isoPath(t)
	s := settings(unattend.FirmwareBIOS)
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	vm := start(t, Config{ISO: iso, AnswerFile: render(t, s), AnswerMedia: MediaFloppy, Disk: disk, DiskBus: BusSATA, NIC: "e1000", Firmware: BIOS})
	line, i, _ := wait(t, vm, biosStage, 0, `answer file A:\autounattend.xml`)
	t.Log(line)
	_, i, d := wait(t, vm, biosStage, i, setup.WindowsPEDoneLine)
	record(t, "windowsPE done", d)
	_, i, d = wait(t, vm, biosStage, i, setup.SetupCompleteLine)
	record(t, "Setup complete", d)
	wait(t, vm, 30*time.Second, i, setup.WinRMListeningPrefix)
	checkWinRM(t, vm, "Administrator", s.Password, "STANDIN")
}

var firstLogonCommands = regexp.MustCompile(`(?s)\s*<FirstLogonCommands>.*</FirstLogonCommands>`)

// TestBadAnswerFiles: answer files Setup refuses or that leave Windows
// without WinRM.
func TestBadAnswerFiles(t *testing.T) {
	iso := isoPath(t)

	t.Run("no WinRM enablement", func(t *testing.T) {
		s := settings(unattend.FirmwareBIOS)
		xml := firstLogonCommands.ReplaceAll(render(t, s), nil)
		if strings.Contains(string(xml), "winrm") {
			t.Fatal("the answer file still enables WinRM")
		}
		// SeaBIOS on q35: CDs and the disk on AHCI, e1000e.
		vm := start(t, Config{ISO: iso, AnswerFile: xml, Disk: filepath.Join(t.TempDir(), "disk.qcow2"), DiskBus: BusSATA, NIC: "e1000e", Machine: "q35"})
		_, i, d := wait(t, vm, 2*biosStage, 0, setup.SetupCompleteLine)
		record(t, "Setup complete", d)
		line, _, _ := wait(t, vm, 30*time.Second, i, setup.WinRMNotStartedPrefix, setup.WinRMListeningPrefix)
		if !strings.HasPrefix(line, setup.WinRMNotStartedPrefix) {
			t.Fatalf("WinRM started without enablement: %s", line)
		}
		wait(t, vm, 10*time.Second, i, setup.ReadyLine)
		checkWinRMClosed(t, vm)
	})

	refused := []struct {
		name    string
		answer  func(t *testing.T) []byte
		cfg     Config
		message string
		detail  string
	}{
		{
			name: "wrong image name",
			answer: func(t *testing.T) []byte {
				s := settings(unattend.FirmwareBIOS)
				s.ImageName = "Windows Server 2022 SERVERSTANDARDCOREX"
				return render(t, s)
			},
			cfg:     Config{DiskBus: BusSATA},
			message: "Windows cannot find the Microsoft Software License Terms. Make sure the installation sources are valid and restart the installation.",
			detail:  `/IMAGE/NAME "Windows Server 2022 SERVERSTANDARDCOREX" is not in install.wim`,
		},
		{
			name:    "virtio disk without a storage driver path",
			answer:  func(t *testing.T) []byte { return render(t, settings(unattend.FirmwareBIOS)) },
			cfg:     Config{DiskBus: BusVirtio},
			message: "Windows could not apply the unattend answer file's <DiskConfiguration> setting.",
			detail:  "virtio-blk controller at PCI",
		},
		{
			// The driver folders are there for Linux, not for Windows.
			name: "virtio drivers on a CD without a path table",
			answer: func(t *testing.T) []byte {
				st := settings(unattend.FirmwareBIOS)
				st.VirtioFolder = "2k22"
				return render(t, st)
			},
			cfg:     Config{DiskBus: BusVirtio, CDs: []string{pathTablelessVirtioCD(t)}},
			message: "Windows could not apply the unattend answer file's <DiskConfiguration> setting.",
			detail:  `\viostor\2k22\amd64: not found (STATUS_OBJECT_PATH_NOT_FOUND): the volume's path table is empty (0 bytes)`,
		},
		{
			name: "malformed XML",
			answer: func(t *testing.T) []byte {
				b := render(t, settings(unattend.FirmwareBIOS))
				return b[:len(b)-200]
			},
			cfg:     Config{DiskBus: BusSATA},
			message: `Windows could not parse or process the unattend answer file [E:\autounattend.xml] for pass [windowsPE]. The answer file is invalid.`,
		},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ISO, cfg.AnswerFile = iso, tc.answer(t)
			cfg.Disk = filepath.Join(t.TempDir(), "disk.qcow2")
			vm := start(t, cfg)
			line, i, d := wait(t, vm, biosStage, 0, setup.ErrorMarker)
			record(t, "Setup error shown", d)
			if want := setup.ErrorLine("windowsPE", tc.message); line != want {
				t.Fatalf("error line\n got %s\nwant %s", line, want)
			}
			wait(t, vm, 10*time.Second, i+1, setup.StoppedLine)
			if tc.detail != "" && !strings.Contains(vm.Serial(), tc.detail) {
				t.Errorf("no detail %q in:\n%s", tc.detail, vm.Tail(10))
			}
			// Setup's error stays on screen: the VM keeps running.
			select {
			case <-vm.Exited():
				t.Fatal("QEMU exited after the Setup error")
			case <-time.After(2 * time.Second):
			}
		})
	}
}
