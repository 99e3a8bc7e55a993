package setup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

func render(t *testing.T, s unattend.Settings) []byte {
	t.Helper()
	b, err := unattend.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func base(fw unattend.Firmware) unattend.Settings {
	return unattend.Settings{Firmware: fw, ImageName: "Windows Server 2022 SERVERSTANDARD", Password: "pä$$ w0rd", ComputerName: "BUILD-01",
		TimeZone: "W. Europe Standard Time", VirtioFolder: "2k22", ExtraCommands: []string{"cmd.exe /c echo hi"}}
}

// Every golden answer file of internal/unattend is accepted.
func TestParseGoldenFiles(t *testing.T) {
	files, err := filepath.Glob("../../../unattend/testdata/golden/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			a, err := ParseAnswer(`D:\autounattend.xml`, b)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(f, "arm64") {
				if a.Setup != nil {
					t.Error("arm64 components were applied on amd64")
				}
				return
			}
			if a.Setup == nil || a.Setup.Disk == nil || a.Setup.InstallTo == nil || a.Setup.ImageKey != "/IMAGE/NAME" || !a.Setup.AcceptEula {
				t.Fatalf("windowsPE settings = %+v", a.Setup)
			}
			if a.AutoLogon == nil || !a.AutoLogon.Enabled || a.AutoLogon.Password == "" || len(a.Accounts) == 0 {
				t.Errorf("oobeSystem: autologon %+v, accounts %+v", a.AutoLogon, a.Accounts)
			}
			fw := FirmwareBIOS
			if a.Setup.Disk.Create[0].Type == "EFI" {
				fw = FirmwareUEFI
			}
			if _, err := PlanDisk(a.Setup.Disk, a.Setup.InstallTo, fw, 40<<30/512); err != nil {
				t.Errorf("PlanDisk: %v", err)
			}
			st := &State{}
			for _, c := range a.FirstLogonCommands {
				Interpret(st, c.CommandLine)
			}
			if ok, why := st.WinRMReachable(true); !ok && !strings.Contains(f, "template") {
				t.Errorf("WinRM not enabled by the FirstLogonCommands: %s", why)
			}
		})
	}
}

func TestParseRendered(t *testing.T) {
	s := base(unattend.FirmwareUEFI)
	s.Username = "packer"
	a, err := ParseAnswer(`E:\autounattend.xml`, render(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if a.ComputerName != "BUILD-01" || a.TimeZone != s.TimeZone {
		t.Errorf("specialize: %q %q", a.ComputerName, a.TimeZone)
	}
	if !slices.Equal(a.DriverPaths, s.DriverPaths()) {
		t.Errorf("driver paths = %q, want %q", a.DriverPaths, s.DriverPaths())
	}
	if a.Setup.ImageValue != s.ImageName || a.Setup.InstallTo.PartitionID != 3 {
		t.Errorf("image %q, install to %+v", a.Setup.ImageValue, a.Setup.InstallTo)
	}
	if len(a.Accounts) != 1 || a.Accounts[0].Name != "packer" || a.Accounts[0].Password != s.Password || a.Accounts[0].Group != "Administrators" {
		t.Errorf("accounts = %+v", a.Accounts)
	}
	if a.AutoLogon.Username != "packer" || a.AutoLogon.Password != s.Password {
		t.Errorf("autologon = %+v", a.AutoLogon)
	}
	want := s.FirstLogonCommands()
	if len(a.FirstLogonCommands) != len(want) || a.FirstLogonCommands[0].CommandLine != "cmd.exe /c echo hi" {
		t.Errorf("FirstLogonCommands = %+v", a.FirstLogonCommands)
	}

	s = base(unattend.FirmwareBIOS)
	a, err = ParseAnswer(`E:\autounattend.xml`, render(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Accounts) != 1 || !a.Accounts[0].Builtin || a.Accounts[0].Password != s.Password {
		t.Errorf("administrator = %+v", a.Accounts)
	}
}

func TestParseErrors(t *testing.T) {
	good := string(render(t, base(unattend.FirmwareBIOS)))
	for name, xml := range map[string]string{
		"truncated":    good[:len(good)-50],
		"not unattend": `<?xml version="1.0"?><answers/>`,
		"bad pass":     strings.Replace(good, `pass="specialize"`, `pass="special"`, 1),
		"bad number":   strings.Replace(good, "<DiskID>0</DiskID>", "<DiskID>zero</DiskID>", 1),
		"bad boolean":  strings.Replace(good, "<AcceptEula>true</AcceptEula>", "<AcceptEula>yes</AcceptEula>", 1),
		"empty path":   strings.Replace(good, `<Path>D:\viostor\2k22\amd64</Path>`, "<Path></Path>", 1),
		"bad password": strings.Replace(good, "<PlainText>false</PlainText>", "<PlainText>maybe</PlainText>", 1),
		"duplicate step": good[:strings.Index(good, "<FirstLogonCommands>")] +
			strings.Replace(good[strings.Index(good, "<FirstLogonCommands>"):], "<Order>2</Order>", "<Order>1</Order>", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if xml == good {
				t.Fatal("the replacement did not apply")
			}
			_, err := ParseAnswer(`E:\autounattend.xml`, []byte(xml))
			var se *Error
			if !errors.As(err, &se) || !strings.HasPrefix(se.Message, `Windows could not parse or process the unattend answer file [E:\autounattend.xml] for pass [`) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func plan(t *testing.T, s unattend.Settings, fw string, sectors uint64) (*Plan, error) {
	t.Helper()
	a, err := ParseAnswer("x", render(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return PlanDisk(a.Setup.Disk, a.Setup.InstallTo, fw, sectors)
}

func TestPlanDisk(t *testing.T) {
	const disk = 40 << 30 / 512
	p, err := plan(t, base(unattend.FirmwareBIOS), FirmwareBIOS, disk)
	if err != nil {
		t.Fatal(err)
	}
	if p.Style != StyleMBR || len(p.Partitions) != 1 || p.Windows != 0 {
		t.Fatalf("plan = %+v", p)
	}
	w := p.Partitions[0]
	if w.Start != 2048 || w.Start+w.Size != disk || w.MBRType != MBRTypeNTFS || !w.Active || w.Format != "NTFS" {
		t.Errorf("windows partition = %+v", w)
	}

	s := base(unattend.FirmwareUEFI)
	s.RecoveryPartitionMB = 500
	p, err = plan(t, s, FirmwareUEFI, disk)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ    string
		sizeMB uint64
		format string
	}{{GPTTypeEFI, 100, "FAT32"}, {GPTTypeMSR, 16, ""}, {GPTTypeRecovery, 500, "NTFS"}, {GPTTypeBasicData, 0, "NTFS"}}
	if p.Style != StyleGPT || len(p.Partitions) != 4 || p.Windows != 3 || p.ESP != 0 {
		t.Fatalf("plan = %+v", p)
	}
	for i, w := range want {
		got := p.Partitions[i]
		if got.GPTType != w.typ || (w.sizeMB != 0 && got.SizeMB() != w.sizeMB) || got.Format != w.format || got.Start%2048 != 0 {
			t.Errorf("partition %d = %+v", i+1, got)
		}
	}
	if last := p.Partitions[3]; last.Start+last.Size != disk-33 {
		t.Errorf("Windows ends at %d, want %d", last.Start+last.Size, disk-33)
	}
	if p.Partitions[2].GPTAttrs != 0x8000000000000001 {
		t.Errorf("recovery attributes %#x", p.Partitions[2].GPTAttrs)
	}

	// Layout and firmware must agree, and the layout must fit.
	for name, tc := range map[string]struct {
		s       unattend.Settings
		fw      string
		sectors uint64
		msg     string
	}{
		"GPT layout under BIOS":  {base(unattend.FirmwareUEFI), FirmwareBIOS, disk, "<DiskConfiguration>"},
		"MBR layout under UEFI":  {base(unattend.FirmwareBIOS), FirmwareUEFI, disk, "<DiskConfiguration>"},
		"disk too small for ESP": {base(unattend.FirmwareUEFI), FirmwareUEFI, 100 << 20 / 512, "<DiskConfiguration>"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := plan(t, tc.s, tc.fw, tc.sectors)
			var se *Error
			if !errors.As(err, &se) || !strings.Contains(se.Message, tc.msg) {
				t.Fatalf("err = %v, want a Setup error with %q", err, tc.msg)
			}
		})
	}
}

func TestPartitionTables(t *testing.T) {
	const disk = 8 << 30 / 512
	p, err := plan(t, base(unattend.FirmwareUEFI), FirmwareUEFI, disk)
	if err != nil {
		t.Fatal(err)
	}
	n := byte(0)
	primary, backup := p.GPT(func() [16]byte { n++; return [16]byte{n} })
	mbr := p.MBR(0x12345678)
	if mbr[450] != 0xEE || mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.Fatalf("protective MBR: % x", mbr[446:462])
	}
	check := func(h []byte, entries []byte, current, other uint64) {
		t.Helper()
		if !bytes.Equal(h[:8], []byte("EFI PART")) {
			t.Fatal("no signature")
		}
		crc := binary.LittleEndian.Uint32(h[16:])
		hh := append([]byte(nil), h[:92]...)
		binary.LittleEndian.PutUint32(hh[16:], 0)
		if crc32.ChecksumIEEE(hh) != crc {
			t.Error("header CRC mismatch")
		}
		if binary.LittleEndian.Uint32(h[88:]) != crc32.ChecksumIEEE(entries) {
			t.Error("entries CRC mismatch")
		}
		if binary.LittleEndian.Uint64(h[24:]) != current || binary.LittleEndian.Uint64(h[32:]) != other {
			t.Errorf("header LBAs %d %d", binary.LittleEndian.Uint64(h[24:]), binary.LittleEndian.Uint64(h[32:]))
		}
	}
	check(primary[:512], primary[512:], 1, disk-1)
	check(backup[len(backup)-512:], backup[:len(backup)-512], disk-1, 1)
	if FormatGUID(primary[512:528]) != GPTTypeEFI {
		t.Errorf("first entry type %s", FormatGUID(primary[512:528]))
	}
	name := string(bytes.ReplaceAll(primary[512+128+56:512+128+56+56], []byte{0}, nil))
	if name != "Microsoft reserved partition" {
		t.Errorf("second entry name %q", name)
	}

	p, err = plan(t, base(unattend.FirmwareBIOS), FirmwareBIOS, disk)
	if err != nil {
		t.Fatal(err)
	}
	mbr = p.MBR(1)
	e := mbr[446:]
	if e[0] != 0x80 || e[4] != 0x07 || binary.LittleEndian.Uint32(e[8:]) != 2048 || binary.LittleEndian.Uint32(e[12:]) != disk-2048 {
		t.Errorf("MBR entry % x", e[:16])
	}
}

func TestInterpret(t *testing.T) {
	st := &State{WinRM: WinRMState{WinRMConfig: winsim.NewWinRMConfig()}}
	for _, c := range unattend.WinRMCommands() {
		if out := Interpret(st, c.CommandLine); !out.Understood {
			t.Errorf("%s: not understood: %s", c.CommandLine, out.Summary)
		}
	}
	if ok, why := st.WinRMReachable(false); !ok {
		t.Errorf("WinRM after enable-winrm.cmd: %s", why)
	}
	w := st.WinRM
	eps, auth, reject, _ := w.Endpoints()
	if len(eps) != 1 || eps[0].Port != 5985 || auth&wsman.AuthBasic == 0 || reject || !w.LocalAccountTokenFilterPolicy || w.StartMode != "delayed-auto" || w.NetworkCategory != "Private" {
		t.Errorf("state = %+v, endpoints %+v", w, eps)
	}

	st = &State{WinRM: WinRMState{WinRMConfig: winsim.NewWinRMConfig()}}
	if ok, _ := st.WinRMReachable(true); ok {
		t.Error("WinRM reachable on a fresh install")
	}
	Interpret(st, "winrm quickconfig -q")
	Interpret(st, "sc.exe config WinRM start= disabled")
	if ok, _ := st.WinRMReachable(false); ok {
		t.Error("WinRM starts at boot although disabled")
	}

	for line, want := range map[string]*PowerAction{
		`shutdown /s /t 10 /f /d p:4:1 /c "Packer Shutdown"`: {Delay: 10 * time.Second},
		`cmd.exe /c shutdown /r /t 0`:                        {Restart: true},
		`C:\Windows\System32\shutdown.exe /s`:                {Delay: 30 * time.Second},
		`shutdown /p`:                                        {},
		`C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown /quiet`: {Sysprep: true},
		`sysprep.exe /oobe /reboot`: {Sysprep: true, Restart: true},
		`shutdown /a`:               nil,
		`echo shutting down`:        nil,
	} {
		out := Interpret(&State{}, line)
		if (out.Power == nil) != (want == nil) || (want != nil && *out.Power != *want) {
			t.Errorf("%s: power %+v, want %+v", line, out.Power, want)
		}
	}
	st = &State{}
	Interpret(st, `sysprep.exe /generalize /oobe /shutdown`)
	if st.Sysprep != "generalized" {
		t.Errorf("sysprep state %q", st.Sysprep)
	}
	if out := Interpret(st, "choco install git"); out.Understood || len(st.Commands) != 0 {
		t.Errorf("unknown command: %+v", out)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := &State{Phase: PhaseOOBE, ComputerName: "X", Accounts: []Account{{Name: "a", Password: "b"}}}
	st.Note("hello %d", 1)
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Phase != PhaseOOBE || got.ComputerName != "X" || got.Accounts[0].Password != "b" || got.Version != stateVersion || len(got.History) != 1 {
		t.Errorf("state = %+v", got)
	}
}

// setuperr.log lines land where the simulated Windows serves C:\, in
// Setup's format, appended.
func TestAppendSetupErr(t *testing.T) {
	root := t.TempDir()
	if err := AppendSetupErr(root, "[setup]", "first %d", 1); err != nil {
		t.Fatal(err)
	}
	if err := AppendSetupErr(root, "[Shell Unattend]", "second"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "winbake", "winsim", "fs", "C", "Windows", "Panther", "setuperr.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "Error                 [setup] first 1") || !strings.HasSuffix(lines[1], "[Shell Unattend] second") {
		t.Errorf("setuperr.log:\n%q", b)
	}
	if _, err := time.Parse("2006-01-02 15:04:05", strings.SplitN(lines[0], ",", 2)[0]); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	// The simulated Windows on that volume serves it as C:\ (what `type`
	// over WinRM reads).
	m, err := winsim.New(winsim.Options{StateDir: filepath.Join(root, WinsimStateDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	served, err := m.FS().ReadFile(`C:\Windows\Panther\setuperr.log`)
	if err != nil || !bytes.Equal(served, b) {
		t.Errorf("winsim serves %q, %v", served, err)
	}
}
