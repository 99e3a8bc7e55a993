package unattend

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.xml from the current renderer")

// testPassword is the build password used by every golden file.
const testPassword = `Build-Pa55word!`

// fakeProductKey has the right shape but is not a real key.
const fakeProductKey = "BCDFG-HJKMN-PQRTV-WXY23-46789"

type goldenCase struct {
	name     string
	settings Settings
	template string // file under testdata/templates; empty = Render
}

var goldenCases = []goldenCase{
	{
		name: "server2022-core-bios",
		settings: Settings{
			Firmware:      FirmwareBIOS,
			ImageName:     "Windows Server 2022 SERVERDATACENTERCORE",
			VirtioFolder:  "2k22",
			EnableRDP:     true,
			RDPRequireNLA: true,
			AllowICMP:     true,
			Password:      testPassword,
		},
	},
	{
		name: "server2022-desktop-uefi",
		settings: Settings{
			Firmware:      FirmwareUEFI,
			ImageName:     "Windows Server 2022 SERVERSTANDARD",
			ProductKey:    fakeProductKey,
			Organization:  "Example & Sons <Build>",
			TimeZone:      "W. Europe Standard Time",
			ComputerName:  "WS2022-BUILD",
			VirtioFolder:  "2k22",
			EnableRDP:     true,
			RDPRequireNLA: false,
			AllowICMP:     true,
			Password:      testPassword,
			ExtraCommands: []string{
				`cmd.exe /c mkdir C:\build`,
				`powershell.exe -NoProfile -Command "Set-ItemProperty -Path 'HKLM:\Software' -Name x -Value 1"`,
			},
		},
	},
	{
		// A guest reached over a network: WinRM over HTTPS with the
		// build's certificate from the answer medium.
		name: "server2022-core-https",
		settings: Settings{
			Firmware:     FirmwareBIOS,
			ImageName:    "Windows Server 2022 SERVERSTANDARDCORE",
			VirtioFolder: "2k22",
			AllowICMP:    true,
			Password:     testPassword,
			WinRM: WinRMSettings{
				HTTPS: true, Thumbprint: "0123456789ABCDEF0123456789ABCDEF01234567",
				PFXFile: "winrm.pfx", PFXPassword: "00112233445566778899aabbccddeeff",
				FirewallRule: "WinRM HTTPS (winbake build)",
			},
		},
	},
	{
		name: "windows11-uefi-tpm",
		settings: Settings{
			Firmware:     FirmwareUEFI,
			ImageName:    "Windows 11 Pro",
			ProductKey:   fakeProductKey,
			UILanguage:   "en-US",
			InputLocale:  "0407:00000407",
			UserLocale:   "de-DE",
			TimeZone:     "W. Europe Standard Time",
			VirtioFolder: "w11",
			Username:     "packer",
			Password:     testPassword,
		},
	},
	{
		name: "windows11-bypass-hardware-checks",
		settings: Settings{
			Firmware:             FirmwareBIOS,
			ImageName:            "Windows 11 Enterprise",
			VirtioFolder:         "w11",
			BypassHardwareChecks: true,
			EnableRDP:            true,
			RDPRequireNLA:        true,
			Username:             "packer",
			Password:             testPassword,
		},
	},
	{
		name: "server2025-uefi-recovery",
		settings: Settings{
			Firmware:            FirmwareUEFI,
			ImageName:           "Windows Server 2025 SERVERDATACENTER",
			RecoveryPartitionMB: 1024,
			VirtioFolder:        "2k25",
			VirtioDrives:        []string{"E", "F"},
			EnableRDP:           true,
			RDPRequireNLA:       true,
			AllowICMP:           true,
			Password:            testPassword,
		},
	},
	{
		name: "server2019-sata-e1000-no-virtio",
		settings: Settings{
			Firmware:  FirmwareBIOS,
			ImageName: "Windows Server 2019 SERVERSTANDARDCORE",
			Password:  testPassword,
		},
	},
	{
		name: "windows11-arm64-uefi",
		settings: Settings{
			Architecture: ArchARM64,
			Firmware:     FirmwareUEFI,
			ImageName:    "Windows 11 Pro",
			VirtioFolder: "w11",
			Username:     "packer",
			Password:     testPassword,
			AllowICMP:    true,
		},
	},
	{
		name:     "template-server2022",
		template: "custom-oobe.xml.tmpl",
		settings: Settings{
			Firmware:      FirmwareUEFI,
			ImageName:     "Windows Server 2022 SERVERDATACENTER",
			VirtioFolder:  "2k22",
			EnableRDP:     true,
			RDPRequireNLA: true,
			AllowICMP:     true,
			Password:      testPassword,
			ExtraCommands: []string{`cmd.exe /c echo template > C:\template.txt`},
		},
	},
}

func renderCase(t *testing.T, c goldenCase) []byte {
	t.Helper()
	if c.template == "" {
		out, err := Render(c.settings)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		return out
	}
	text, err := os.ReadFile(filepath.Join("testdata", "templates", c.template))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(c.template, string(text))
	if err != nil {
		t.Fatalf("ParseTemplate: %v", err)
	}
	out, err := tmpl.Execute(c.settings)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := renderCase(t, c)
			path := filepath.Join("testdata", "golden", c.name+".xml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/unattend -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered output; run with -update after checking the change\n--- got ---\n%s", path, got)
			}
		})
	}
}

// TestGoldenStructure parses every golden file and checks the properties
// Windows Setup relies on, independently of the rendering code.
func TestGoldenStructure(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "golden", c.name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckAnswerFile(b); err != nil {
				t.Fatalf("CheckAnswerFile: %v", err)
			}
			assertStructure(t, parseTree(t, b), c.settings.WithDefaults())
		})
	}
}

// listItems are the elements that are entries of a list and need
// wcm:action="add"; keyed ones also need a unique wcm:keyValue.
var listItems = map[string]bool{
	"PathAndCredentials": true, "Disk": true, "CreatePartition": true, "ModifyPartition": true,
	"MetaData": true, "RunSynchronousCommand": true, "SynchronousCommand": true,
	"LocalAccount": true, "FirewallGroup": true,
}
var keyedItems = map[string]bool{"PathAndCredentials": true, "FirewallGroup": true}

// orderedLists are containers whose children carry Order 1..n.
var orderedLists = []string{"CreatePartitions", "ModifyPartitions", "RunSynchronous", "FirstLogonCommands"}

func assertStructure(t *testing.T, root *node, s Settings) {
	t.Helper()
	if root.Name.Local != "unattend" || root.Name.Space != Namespace {
		t.Fatalf("root is {%s}%s", root.Name.Space, root.Name.Local)
	}

	// Passes and components.
	seenPass := map[string]bool{}
	for _, set := range root.Children {
		if set.Name.Local != "settings" {
			t.Errorf("line %d: unexpected <%s> under <unattend>", set.Line, set.Name.Local)
			continue
		}
		pass, _ := set.attr("", "pass")
		if !slices.Contains(Passes, pass) {
			t.Errorf("line %d: invalid pass %q", set.Line, pass)
		}
		if seenPass[pass] {
			t.Errorf("line %d: pass %q appears twice", set.Line, pass)
		}
		seenPass[pass] = true
		seenComp := map[string]bool{}
		for _, comp := range set.Children {
			if comp.Name.Local != "component" {
				t.Errorf("line %d: unexpected <%s> in pass %s", comp.Line, comp.Name.Local, pass)
				continue
			}
			name, _ := comp.attr("", "name")
			want := map[string]string{
				"processorArchitecture": s.Architecture,
				"publicKeyToken":        PublicKeyToken,
				"language":              "neutral",
				"versionScope":          "nonSxS",
			}
			if name == "" {
				t.Errorf("line %d: component without name", comp.Line)
			}
			for k, v := range want {
				if got, ok := comp.attr("", k); !ok || got != v {
					t.Errorf("line %d: component %s: %s=%q, want %q", comp.Line, name, k, got, v)
				}
			}
			if seenComp[name] {
				t.Errorf("line %d: component %s appears twice in pass %s", comp.Line, name, pass)
			}
			seenComp[name] = true
		}
	}
	for _, p := range []string{PassWindowsPE, PassSpecialize, PassOOBESystem} {
		if !seenPass[p] {
			t.Errorf("pass %s missing", p)
		}
	}

	// List items carry wcm:action (and wcm:keyValue where keyed).
	var walk func(*node)
	walk = func(n *node) {
		keys := map[string]bool{}
		for _, c := range n.Children {
			if listItems[c.Name.Local] {
				if a, ok := c.attr(WCMNamespace, "action"); !ok || a != "add" {
					t.Errorf("line %d: <%s> lacks wcm:action=\"add\"", c.Line, c.Name.Local)
				}
			}
			if keyedItems[c.Name.Local] {
				k, ok := c.attr(WCMNamespace, "keyValue")
				if !ok || k == "" {
					t.Errorf("line %d: <%s> lacks wcm:keyValue", c.Line, c.Name.Local)
				}
				if keys[k] {
					t.Errorf("line %d: duplicate wcm:keyValue %q", c.Line, k)
				}
				keys[k] = true
			}
			walk(c)
		}
	}
	walk(root)

	// Order values are 1..n without gaps.
	for _, list := range orderedLists {
		for _, l := range root.all(list) {
			for i, item := range l.Children {
				if got := item.childText("Order"); got != strconv.Itoa(i+1) {
					t.Errorf("line %d: %s item %d has Order %q, want %d", item.Line, list, i+1, got, i+1)
				}
			}
		}
	}

	// Disk layout: InstallTo points at the Windows partition, which is last
	// and fills the disk.
	setup := root.component(PassWindowsPE, "Microsoft-Windows-Setup")
	if setup == nil {
		t.Fatal("windowsPE Microsoft-Windows-Setup missing")
	}
	disk := setup.path("DiskConfiguration", "Disk")
	creates := disk.path("CreatePartitions").Children
	installTo := setup.path("ImageInstall", "OSImage", "InstallTo")
	pid := installTo.childText("PartitionID")
	layout := LayoutFor(s.Firmware, s.RecoveryPartitionMB)
	if pid != strconv.Itoa(layout.WindowsPartition) || pid != strconv.Itoa(len(creates)) {
		t.Errorf("InstallTo PartitionID %s, want %d (the last of %d partitions)", pid, layout.WindowsPartition, len(creates))
	}
	if last := creates[len(creates)-1]; last.childText("Extend") != "true" || last.childText("Type") != "Primary" {
		t.Errorf("the Windows partition must be a Primary partition with Extend=true")
	}
	var types []string
	for _, c := range creates {
		types = append(types, c.childText("Type"))
	}
	wantTypes := []string{"Primary"}
	if s.Firmware == FirmwareUEFI {
		wantTypes = []string{"EFI", "MSR", "Primary"}
		if s.RecoveryPartitionMB > 0 {
			wantTypes = []string{"EFI", "MSR", "Primary", "Primary"}
		}
	}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("partition types %v, want %v", types, wantTypes)
	}
	var windowsMod *node
	for _, m := range disk.path("ModifyPartitions").Children {
		if m.childText("Label") == "Windows" {
			windowsMod = m
		}
		if m.childText("TypeID") == RecoveryPartitionTypeID {
			if rid, _ := strconv.Atoi(m.childText("PartitionID")); rid >= layout.WindowsPartition {
				t.Errorf("recovery partition %d is not before Windows (%d)", rid, layout.WindowsPartition)
			}
		}
	}
	if windowsMod == nil || windowsMod.childText("PartitionID") != pid || windowsMod.childText("Format") != "NTFS" || windowsMod.childText("Letter") != "C" {
		t.Errorf("no NTFS C: ModifyPartition labelled Windows with PartitionID %s", pid)
	}
	if s.Firmware == FirmwareBIOS && windowsMod != nil && windowsMod.childText("Active") != "true" {
		t.Errorf("BIOS Windows partition must be active")
	}

	// Image selection.
	md := setup.path("ImageInstall", "OSImage", "InstallFrom", "MetaData")
	if md.childText("Key") != "/IMAGE/NAME" || md.childText("Value") != s.ImageName {
		t.Errorf("MetaData %s=%q, want /IMAGE/NAME=%q", md.childText("Key"), md.childText("Value"), s.ImageName)
	}
	pk := setup.path("UserData", "ProductKey")
	if (pk != nil) != (s.ProductKey != "") {
		t.Errorf("ProductKey element present=%v, key set=%v", pk != nil, s.ProductKey != "")
	}

	// Virtio driver paths.
	pnp := root.component(PassWindowsPE, "Microsoft-Windows-PnpCustomizationsWinPE")
	if s.VirtioFolder == "" {
		if pnp != nil {
			t.Error("PnpCustomizationsWinPE present without a virtio folder")
		}
	} else {
		if pnp == nil {
			t.Fatal("PnpCustomizationsWinPE missing")
		}
		var paths []string
		for _, p := range pnp.all("Path") {
			paths = append(paths, p.Text)
		}
		if want := s.DriverPaths(); !slices.Equal(paths, want) {
			t.Errorf("driver paths %v, want %v", paths, want)
		}
		if len(paths) != len(s.VirtioDrives)*3 {
			t.Errorf("%d driver paths for %d drives", len(paths), len(s.VirtioDrives))
		}
	}

	// LabConfig.
	var peCmds []string
	if rs := setup.child("RunSynchronous"); rs != nil {
		for _, c := range rs.Children {
			peCmds = append(peCmds, c.childText("Path"))
		}
	}
	if s.BypassHardwareChecks != (len(peCmds) == 3) {
		t.Errorf("windowsPE RunSynchronous %v with bypass_hardware_checks=%v", peCmds, s.BypassHardwareChecks)
	}
	for i, v := range LabConfigValues {
		if s.BypassHardwareChecks && peCmds[i] != fmt.Sprintf(`reg add HKLM\SYSTEM\Setup\LabConfig /v %s /t REG_DWORD /d 1 /f`, v) {
			t.Errorf("LabConfig command %d is %q", i, peCmds[i])
		}
	}

	// RDP and ICMP.
	rdp := root.component(PassSpecialize, "Microsoft-Windows-TerminalServices-LocalSessionManager")
	fw := root.component(PassSpecialize, "Networking-MPSSVC-Svc")
	if s.EnableRDP {
		if rdp == nil || rdp.childText("fDenyTSConnections") != "false" {
			t.Error("RDP enabled but fDenyTSConnections is not false")
		}
		if fw == nil || fw.path("FirewallGroups", "FirewallGroup").childText("Group") != "@FirewallAPI.dll,-28752" {
			t.Error("RDP enabled but the Remote Desktop firewall group is not enabled")
		}
		nla := root.component(PassSpecialize, "Microsoft-Windows-TerminalServices-RDP-WinStationExtensions")
		want := "0"
		if s.RDPRequireNLA {
			want = "1"
		}
		if nla == nil || nla.childText("UserAuthentication") != want {
			t.Errorf("UserAuthentication should be %s", want)
		}
	} else if rdp != nil || fw != nil {
		t.Error("RDP components present with RDP disabled")
	}
	dep := root.component(PassSpecialize, "Microsoft-Windows-Deployment")
	if s.AllowICMP != (dep != nil) {
		t.Errorf("ICMP rule present=%v, allow_icmp=%v", dep != nil, s.AllowICMP)
	}
	if dep != nil {
		if p := dep.path("RunSynchronous", "RunSynchronousCommand").childText("Path"); !bytes.Contains([]byte(p), []byte("protocol=icmpv4:8,any")) {
			t.Errorf("ICMP command %q", p)
		}
	}

	// oobeSystem: accounts, passwords, WinRM last.
	shell := root.component(PassOOBESystem, "Microsoft-Windows-Shell-Setup")
	if shell == nil {
		t.Fatal("oobeSystem Microsoft-Windows-Shell-Setup missing")
	}
	al := shell.child("AutoLogon")
	if al.childText("Username") != s.Username || al.childText("Enabled") != "true" {
		t.Errorf("AutoLogon user %q enabled %q", al.childText("Username"), al.childText("Enabled"))
	}
	if al.path("Password").childText("PlainText") != "false" {
		t.Error("AutoLogon password must be encoded (PlainText false)")
	}
	if got := decodePassword(t, al.path("Password", "Value").Text, PasswordSuffix); got != s.Password {
		t.Errorf("AutoLogon password round-trips to %q", got)
	}
	ua := shell.child("UserAccounts")
	if s.IsBuiltinAdministrator() {
		ap := ua.child("AdministratorPassword")
		if ap == nil || ap.childText("PlainText") != "false" || decodePassword(t, ap.childText("Value"), AdministratorPasswordSuffix) != s.Password {
			t.Error("AdministratorPassword missing or wrong")
		}
		if ua.child("LocalAccounts") != nil {
			t.Error("LocalAccounts present for the built-in Administrator")
		}
	} else {
		la := ua.path("LocalAccounts", "LocalAccount")
		if la == nil || la.childText("Name") != s.Username || la.childText("Group") != "Administrators" {
			t.Fatal("LocalAccount for the build user missing")
		}
		if decodePassword(t, la.path("Password", "Value").Text, PasswordSuffix) != s.Password {
			t.Error("LocalAccount password does not round-trip")
		}
	}
	oobe := shell.child("OOBE")
	for _, k := range []string{"HideEULAPage", "HideOEMRegistrationScreen", "HideOnlineAccountScreens", "HideWirelessSetupInOOBE", "HideLocalAccountScreen"} {
		if oobe.childText(k) != "true" {
			t.Errorf("OOBE %s is %q", k, oobe.childText(k))
		}
	}
	if oobe.childText("ProtectYourPC") != "3" {
		t.Errorf("ProtectYourPC %q", oobe.childText("ProtectYourPC"))
	}
	var cmds []string
	for _, c := range shell.child("FirstLogonCommands").Children {
		cmds = append(cmds, c.childText("CommandLine"))
	}
	winrm := s.WinRMCommands()
	if len(cmds) != len(s.ExtraCommands)+len(winrm) {
		t.Fatalf("%d FirstLogonCommands, want %d extra + %d WinRM", len(cmds), len(s.ExtraCommands), len(winrm))
	}
	if !slices.Equal(cmds[:len(s.ExtraCommands)], s.ExtraCommands) {
		t.Errorf("extra commands are not first: %q", cmds[:len(s.ExtraCommands)])
	}
	for i, w := range winrm {
		if got := cmds[len(s.ExtraCommands)+i]; got != w.CommandLine {
			t.Errorf("FirstLogonCommand %d is %q, want WinRM command %q", len(s.ExtraCommands)+i+1, got, w.CommandLine)
		}
	}
}
