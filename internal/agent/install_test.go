package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

const (
	dismExe   = `C:\Windows\System32\dism.exe`
	expandExe = `C:\Windows\System32\expand.exe`
)

func dismArgs(cab, log string) []string {
	return []string{"/Online", "/Add-Package", "/PackagePath:" + cab, "/NoRestart", "/Quiet", "/English", "/LogPath:" + log}
}

func TestInstallCabExitCodes(t *testing.T) {
	const cab = `C:\Windows\Temp\winbake\updates\windows10.0-kb5005112-x64.cab`
	const log = `C:\Windows\Temp\winbake\logs\kb5005112.log`
	for _, tc := range []struct {
		code   uint32
		result Outcome
		ok     bool
		reboot bool
	}{
		{0, Installed, true, false},
		{3010, InstalledRebootRequired, true, true},
		{2359301, InstalledRebootRequired, true, true},
		{0xF0803, InstalledRebootRequired, true, true},
		{1641, RebootInitiated, true, true},
		{2359302, AlreadyInstalled, true, false},
		{2148468766, NotApplicable, true, false},
		{2149842967, NotApplicable, true, false},
		{2148468771, NeedsServicingStack, false, false},
		{1, Failed, false, false},
		{87, Failed, false, false},
		{2147956498, Failed, false, false}, // 0x80073712 component store corrupt
		{0xF0801, Failed, false, false},    // CBS_S_BUSY: not a known outcome
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			sys := newFakeSystem(t)
			sys.files.put(cab, []byte("MSCF"))
			output := ""
			if !tc.ok {
				output = fmt.Sprintf("\r\nError: 0x%x\r\n\r\nThe DISM log file can be found at %s\r\n", tc.code, log)
			}
			sys.procs.expect(call{path: dismExe, args: dismArgs(cab, log), code: tc.code, output: output})

			var doc InstallResult
			code, stderr := run(t, sys, &doc, "install", cab, "--log", log)
			wantCode := ExitOK
			if !tc.ok {
				wantCode = ExitFailed
			}
			if code != wantCode || doc.OK != tc.ok || doc.Result != tc.result || doc.RebootRequired != tc.reboot {
				t.Fatalf("exit code %d, doc %+v", code, doc)
			}
			if doc.Verb != "install" || doc.Package != cab || doc.Kind != "cab" || doc.Log != log || doc.ExpandDir != "" {
				t.Errorf("doc %+v", doc)
			}
			if doc.ExitCode != tc.code || doc.ExitCodeHex != fmt.Sprintf("0x%X", tc.code) {
				t.Errorf("exit_code %d %s, want %d", doc.ExitCode, doc.ExitCodeHex, tc.code)
			}
			if tc.ok != (doc.Error == "") {
				t.Errorf("error %q", doc.Error)
			}
			if !tc.ok && !strings.Contains(doc.Error, fmt.Sprint(tc.code)) && !strings.Contains(doc.Error, doc.ExitCodeHex) {
				t.Errorf("error %q does not give the exit code", doc.Error)
			}
			if tc.result == NeedsServicingStack && !strings.Contains(doc.Error, "servicing stack") {
				t.Errorf("error %q", doc.Error)
			}
			if len(doc.Steps) != 1 {
				t.Fatalf("steps %+v", doc.Steps)
			}
			st := doc.Steps[0]
			if st.Program != dismExe || !slices.Equal(st.Args, dismArgs(cab, log)) || st.Package != cab ||
				st.ExitCode != tc.code || st.Result != tc.result || st.Output != strings.TrimSpace(output) {
				t.Errorf("step %+v", st)
			}
			if doc.PendingReboot == nil || doc.PendingReboot.Pending {
				t.Errorf("pending_reboot %+v (%s)", doc.PendingReboot, doc.PendingRebootError)
			}
			if !sys.files.exists(`C:\Windows\Temp\winbake\logs`) {
				t.Error("log directory not created")
			}
			if !strings.Contains(stderr, string(tc.result)) || (output != "" && !strings.Contains(stderr, "Error: 0x")) {
				t.Errorf("stderr %q", stderr)
			}
		})
	}
}

func TestClassifyExitCode(t *testing.T) {
	for code, want := range map[uint32]Outcome{
		0: Installed, 3010: InstalledRebootRequired, 2359301: InstalledRebootRequired, 985091: InstalledRebootRequired,
		1641: RebootInitiated, 2359302: AlreadyInstalled, 2148468766: NotApplicable, 2149842967: NotApplicable,
		2148468771: NeedsServicingStack, 5: Failed, 2359303: Failed, 16001: Failed,
	} {
		if got := ClassifyExitCode(code); got != want {
			t.Errorf("ClassifyExitCode(%d) = %s, want %s", code, got, want)
		}
	}
	if HexCode(2148468766) != "0x800F081E" || HexCode(3010) != "0xBC2" || HexCode(0) != "0x0" {
		t.Error("HexCode")
	}
}

func TestInstallDefaultsAndPendingReboot(t *testing.T) {
	// Windows on D:, no --log: programs and the log follow SystemRoot.
	sys := newFakeSystem(t)
	sys.reg.set(KeyCurrentVersion, "SystemRoot", `D:\WINDOWS`)
	cab := `E:\updates\ssu-20348.2330-x64.cab`
	sys.files.put(cab, []byte("MSCF"))
	log := `D:\WINDOWS\Logs\winbake\ssu-20348.2330-x64.cab.dism.log`
	sys.procs.expect(call{
		path: `D:\WINDOWS\System32\dism.exe`, args: dismArgs(cab, log), code: 3010,
		effect: func(s *fakeSystem) {
			s.reg.addKey(KeyCBSRebootPending)
			s.reg.addKey(KeyCBSPackagesPending + `\Package_for_ServicingStack_2330`)
			s.reg.set(KeySessionManager, "PendingFileRenameOperations", "x")
		},
	})
	var doc InstallResult
	code, _ := run(t, sys, &doc, "install", cab)
	if code != ExitOK || doc.Result != InstalledRebootRequired || doc.Log != log {
		t.Fatalf("code %d, doc %+v", code, doc)
	}
	want := PendingReboot{Pending: true, Reasons: []string{ReasonCBSRebootPending, ReasonCBSPackagesPending}, SoftReasons: []string{SoftPendingFileRename}}
	pr := doc.PendingReboot
	if pr == nil || !pr.Pending || !slices.Equal(pr.Reasons, want.Reasons) || !slices.Equal(pr.SoftReasons, want.SoftReasons) {
		t.Errorf("pending_reboot %+v", pr)
	}
	if !sys.files.exists(`D:\WINDOWS\Logs\winbake`) {
		t.Error("log directory not created")
	}
}

func TestInstallPendingRebootCheckFails(t *testing.T) {
	sys := newFakeSystem(t)
	cab := `C:\u\x.cab`
	sys.files.put(cab, nil)
	sys.procs.expect(call{path: dismExe, args: dismArgs(cab, `C:\l.log`), code: 0, effect: func(s *fakeSystem) {
		s.reg.err = errors.New("registry gone")
		s.reg.errKey = KeyCBSRebootPending
	}})
	var doc InstallResult
	code, _ := run(t, sys, &doc, "install", cab, "--log", `C:\l.log`)
	if code != ExitOK || !doc.OK || doc.PendingReboot != nil || !strings.Contains(doc.PendingRebootError, "registry gone") {
		t.Errorf("code %d, doc %+v", code, doc)
	}
}

func TestInstallFailuresBeforeDISM(t *testing.T) {
	t.Run("missing package", func(t *testing.T) {
		sys := newFakeSystem(t)
		var doc InstallResult
		code, _ := run(t, sys, &doc, "install", `C:\u\missing.msu`)
		if code != ExitFailed || doc.OK || doc.Result != Failed || !strings.Contains(doc.Error, "missing.msu") ||
			len(doc.Steps) != 0 || doc.Steps == nil || doc.PendingReboot != nil || doc.ExitCode != 0 {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("package is a directory", func(t *testing.T) {
		sys := newFakeSystem(t)
		_ = sys.files.MkdirAll(`C:\u\dir.cab`)
		var doc InstallResult
		code, _ := run(t, sys, &doc, "install", `C:\u\dir.cab`)
		if code != ExitFailed || doc.OK || !strings.Contains(doc.Error, "directory") {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("log directory cannot be created", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.files.put(`C:\u\x.cab`, nil)
		sys.files.put(`C:\file`, nil)
		var doc InstallResult
		code, _ := run(t, sys, &doc, "install", `C:\u\x.cab`, "--log", `C:\file\x.log`)
		if code != ExitFailed || doc.OK || !strings.Contains(doc.Error, "log directory") {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("DISM cannot be run", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.files.put(`C:\u\x.cab`, nil)
		sys.procs.expect(call{path: dismExe, args: dismArgs(`C:\u\x.cab`, `C:\x.log`), err: errors.New("file not found")})
		var doc InstallResult
		code, _ := run(t, sys, &doc, "install", `C:\u\x.cab`, "--log", `C:\x.log`)
		if code != ExitFailed || doc.OK || doc.Result != Failed || !strings.Contains(doc.Error, "file not found") ||
			len(doc.Steps) != 1 || doc.Steps[0].Error != "file not found" || doc.Steps[0].Result != Failed {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
}

func TestInstallCancelled(t *testing.T) {
	sys := newFakeSystem(t)
	cab := `C:\u\x.cab`
	sys.files.put(cab, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sys.procs.expect(call{path: dismExe, args: dismArgs(cab, `C:\x.log`), code: 1, effect: func(*fakeSystem) { cancel() }})
	var out, errb strings.Builder
	code := Main(ctx, sys, []string{"install", cab, "--log", `C:\x.log`}, nil, &out, &errb)
	var doc InstallResult
	decodeOne(t, []byte(out.String()), &doc)
	if code != ExitFailed || doc.OK || doc.Result != Failed || !strings.Contains(doc.Error, "cancelled") {
		t.Errorf("code %d, doc %+v", code, doc)
	}
}

// msu is an .msu as expand.exe unpacks it.
type msu struct {
	files map[string]string // name -> content
}

func expandCall(msuPath, dir string, m msu, code uint32) call {
	return call{path: expandExe, args: []string{"-F:*", msuPath, dir}, code: code, effect: func(s *fakeSystem) {
		for name, content := range m.files {
			s.files.put(winJoin(dir, name), []byte(content))
		}
	}}
}

const lcuManifest = `<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <servicing>
    <package action="install">
      <assemblyIdentity name="Package_for_RollupFix" version="20348.2340.1.10" language="neutral" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35"/>
      <source location="%configsetroot%\Windows10.0-KB5035857-x64.cab" />
    </package>
  </servicing>
</unattend>`

var combinedMsu = msu{files: map[string]string{
	"Windows10.0-KB5035857-x64.cab":               "MSCF lcu",
	"SSU-20348.2332-x64.cab":                      "MSCF ssu",
	"WSUSSCAN.cab":                                "MSCF scan",
	"Windows10.0-KB5035857-x64-pkgProperties.txt": "ApplicabilityInfo=...",
	"Windows10.0-KB5035857-x64.xml":               lcuManifest,
}}

func TestInstallMsu(t *testing.T) {
	const pkg = `C:\Windows\Temp\winbake\updates\windows10.0-kb5035857-x64_5e0d0d3b.msu`
	const log = `C:\Windows\Logs\winbake\kb5035857.log`
	const dir = `C:\Windows\Temp\winbake-agent\windows10.0-kb5035857-x64_5e0d0d3b`
	ssu, lcu := dir+`\SSU-20348.2332-x64.cab`, dir+`\Windows10.0-KB5035857-x64.cab`

	for _, tc := range []struct {
		name        string
		ssu, lcu    uint32
		lcuRuns     bool
		result      Outcome
		exitCode    uint32
		ok          bool
		errContains string
	}{
		{name: "both install, reboot", ssu: 0, lcu: 3010, lcuRuns: true, result: InstalledRebootRequired, exitCode: 3010, ok: true},
		{name: "ssu already there", ssu: 2148468766, lcu: 0, lcuRuns: true, result: Installed, exitCode: 0, ok: true},
		{name: "ssu reboot, lcu not applicable", ssu: 3010, lcu: 2148468766, lcuRuns: true, result: InstalledRebootRequired, exitCode: 3010, ok: true},
		{name: "everything skipped, last decides", ssu: 2359302, lcu: 2148468766, lcuRuns: true, result: NotApplicable, exitCode: 2148468766, ok: true},
		{name: "everything already installed", ssu: 2148468766, lcu: 2359302, lcuRuns: true, result: AlreadyInstalled, exitCode: 2359302, ok: true},
		{name: "ssu fails, lcu not tried", ssu: 0x80070005, lcuRuns: false, result: Failed, exitCode: 0x80070005, errContains: "SSU-20348.2332-x64.cab"},
		{name: "lcu fails after ssu", ssu: 3010, lcu: 2147956498, lcuRuns: true, result: Failed, exitCode: 2147956498, errContains: "0x80073712"},
		{name: "lcu needs servicing stack", ssu: 2148468766, lcu: 2148468771, lcuRuns: true, result: NeedsServicingStack, exitCode: 2148468771, errContains: "servicing stack"},
		{name: "ssu starts a reboot", ssu: 1641, lcuRuns: false, result: RebootInitiated, exitCode: 1641, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := newFakeSystem(t)
			sys.files.put(pkg, []byte("MSCF msu"))
			// Leftovers of an earlier attempt must not be installed.
			sys.files.put(dir+`\Windows10.0-KB0000000-x64.cab`, []byte("stale"))
			sys.procs.expect(
				expandCall(pkg, dir, combinedMsu, 0),
				call{path: dismExe, args: dismArgs(ssu, log), code: tc.ssu},
			)
			if tc.lcuRuns {
				sys.procs.expect(call{path: dismExe, args: dismArgs(lcu, log), code: tc.lcu})
			}
			var doc InstallResult
			code, stderr := run(t, sys, &doc, "install", pkg, "--log", log)
			wantCode := ExitOK
			if !tc.ok {
				wantCode = ExitFailed
			}
			if code != wantCode || doc.OK != tc.ok || doc.Result != tc.result || doc.ExitCode != tc.exitCode {
				t.Fatalf("exit code %d, doc %+v", code, doc)
			}
			if doc.Kind != "msu" || doc.ExpandDir != dir || doc.Log != log {
				t.Errorf("doc %+v", doc)
			}
			if tc.errContains != "" && !strings.Contains(doc.Error, tc.errContains) {
				t.Errorf("error %q, want it to contain %q", doc.Error, tc.errContains)
			}
			wantSteps := 2
			if tc.lcuRuns {
				wantSteps = 3
			}
			if len(doc.Steps) != wantSteps || doc.Steps[0].Program != expandExe || doc.Steps[0].Result != "" || doc.Steps[1].Package != ssu {
				t.Fatalf("steps %+v", doc.Steps)
			}
			if doc.Steps[1].Result != ClassifyExitCode(tc.ssu) || tc.lcuRuns && doc.Steps[2].Result != ClassifyExitCode(tc.lcu) {
				t.Errorf("steps %+v", doc.Steps)
			}
			if tc.result == RebootInitiated && (len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "1 package(s)")) {
				t.Errorf("warnings %q", doc.Warnings)
			}
			if sys.files.exists(dir) {
				t.Errorf("%s left behind", dir)
			}
			if !sys.files.exists(pkg) {
				t.Error("the .msu was removed")
			}
			if !strings.Contains(stderr, "expanding") {
				t.Errorf("stderr %q", stderr)
			}
		})
	}
}

func TestInstallMsuTempDirAndCleanupWarning(t *testing.T) {
	sys := newFakeSystem(t)
	pkg := `C:\u\Windows10.0-KB890830-x64 (1).msu`
	dir := `D:\scratch\Windows10.0-KB890830-x64__1_`
	cab := dir + `\Windows10.0-KB890830-x64.cab`
	sys.files.put(pkg, nil)
	sys.procs.expect(
		expandCall(pkg, dir, msu{files: map[string]string{"Windows10.0-KB890830-x64.cab": "", "WSUSSCAN.cab": ""}}, 0),
		call{path: dismExe, args: dismArgs(cab, `C:\l.log`), code: 0, effect: func(s *fakeSystem) {
			s.files.removeErr = errors.New("file in use")
		}},
	)
	var doc InstallResult
	code, _ := run(t, sys, &doc, "install", pkg, "--log", `C:\l.log`, "--temp", `D:\scratch\`)
	if code != ExitOK || !doc.OK || doc.Result != Installed || doc.ExpandDir != dir {
		t.Fatalf("code %d, doc %+v", code, doc)
	}
	if len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "file in use") {
		t.Errorf("warnings %q", doc.Warnings)
	}
}

func TestInstallMsuFailures(t *testing.T) {
	const pkg = `C:\u\x.msu`
	const dir = `C:\Windows\Temp\winbake-agent\x`
	for _, tc := range []struct {
		name      string
		m         msu
		expand    uint32
		exitCode  uint32
		errSubstr string
	}{
		{name: "expand fails", expand: 0x80070070, exitCode: 0x80070070, errSubstr: "expand.exe failed"},
		{name: "no cab", m: msu{files: map[string]string{"WSUSSCAN.cab": "", "x.xml": lcuManifest}}, errSubstr: "no package .cab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := newFakeSystem(t)
			sys.files.put(pkg, nil)
			sys.procs.expect(expandCall(pkg, dir, tc.m, tc.expand))
			var doc InstallResult
			code, _ := run(t, sys, &doc, "install", pkg, "--log", `C:\l.log`)
			if code != ExitFailed || doc.OK || doc.Result != Failed || doc.ExitCode != tc.exitCode || !strings.Contains(doc.Error, tc.errSubstr) {
				t.Errorf("code %d, doc %+v", code, doc)
			}
			if sys.files.exists(dir) {
				t.Errorf("%s left behind", dir)
			}
			if doc.PendingReboot == nil {
				t.Errorf("no pending-reboot check after running expand: %s", doc.PendingRebootError)
			}
		})
	}
}

// A Windows 11 24H2 / Server 2025 .msu (payload in .wim/.psf) goes to DISM
// as it is, pointed at the target; its checkpoints sit in the same folder.
func TestInstallMsuWimPayload(t *testing.T) {
	const pkg = `C:\u\cumulative\windows11.0-kb5044284-x64.msu`
	const dir = `C:\Windows\Temp\winbake-agent\windows11.0-kb5044284-x64`
	sys := newFakeSystem(t)
	sys.files.put(pkg, nil)
	sys.procs.expect(
		expandCall(pkg, dir, msu{files: map[string]string{
			"SSU-26100.2152-x64.cab": "", "Windows11.0-KB5044284-x64.wim": "", "Windows11.0-KB5044284-x64.psf": "", "WSUSSCAN.cab": "",
		}}, 0),
		call{path: dismExe, args: dismArgs(pkg, `C:\l.log`), code: 3010},
	)
	var doc InstallResult
	code, _ := run(t, sys, &doc, "install", pkg, "--log", `C:\l.log`)
	if code != ExitOK || !doc.OK || doc.Result != InstalledRebootRequired || doc.ExitCode != 3010 || len(doc.Steps) != 2 || doc.Steps[1].Package != pkg {
		t.Fatalf("code %d, doc %+v", code, doc)
	}
	if len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "adding the .msu itself") {
		t.Errorf("warnings %q", doc.Warnings)
	}
	if sys.files.exists(dir) {
		t.Errorf("%s left behind", dir)
	}
}

func TestMsuInstallOrder(t *testing.T) {
	utf16Manifest := func(s string) []byte {
		b := []byte{0xFF, 0xFE}
		for _, u := range utf16.Encode([]rune(strings.Replace(s, "utf-8", "utf-16", 1))) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	manifest := func(cabs ...string) string {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="utf-8"?><unattend xmlns="urn:schemas-microsoft-com:unattend"><servicing>`)
		for _, c := range cabs {
			fmt.Fprintf(&b, `<package action="install"><source location="%%configsetroot%%\%s"/></package>`, c)
		}
		b.WriteString(`</servicing></unattend>`)
		return b.String()
	}
	for _, tc := range []struct {
		name      string
		cabs      []string
		manifests [][]byte
		want      []string
		warnings  int
	}{
		{name: "no manifest: SSU first, then by name",
			cabs: []string{"b.cab", "Windows10.0-KB1-x64.cab", "ssu-2.cab", "A.cab", "SSU-1.cab"},
			want: []string{"SSU-1.cab", "ssu-2.cab", "A.cab", "b.cab", "Windows10.0-KB1-x64.cab"}},
		{name: "manifest order, case-insensitive",
			cabs:      []string{"a.cab", "b.cab", "c.cab", "SSU-9.cab"},
			manifests: [][]byte{[]byte(manifest("C.CAB", "a.cab", "SSU-9.cab", "missing.cab"))},
			want:      []string{"SSU-9.cab", "c.cab", "a.cab", "b.cab"}},
		{name: "several manifests",
			cabs:      []string{"a.cab", "b.cab", "c.cab"},
			manifests: [][]byte{[]byte(manifest("b.cab")), []byte(manifest("c.cab"))},
			want:      []string{"b.cab", "c.cab", "a.cab"}},
		{name: "UTF-16 manifest",
			cabs:      []string{"a.cab", "z.cab"},
			manifests: [][]byte{utf16Manifest(manifest("z.cab"))},
			want:      []string{"z.cab", "a.cab"}},
		{name: "broken manifest is a warning",
			cabs:      []string{"b.cab", "a.cab"},
			manifests: [][]byte{[]byte("<unattend><servicing>"), []byte(manifest("b.cab"))},
			want:      []string{"b.cab", "a.cab"}, warnings: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings := msuInstallOrder(tc.cabs, tc.manifests)
			if !slices.Equal(got, tc.want) || len(warnings) != tc.warnings {
				t.Errorf("got %q (warnings %q), want %q", got, warnings, tc.want)
			}
		})
	}
}

func TestWinPaths(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{winJoin(`C:\Windows\`, "System32", "dism.exe"), `C:\Windows\System32\dism.exe`},
		{winJoin(`C:`, `x`), `C:\x`},
		{winBase(`C:\a\b.msu`), "b.msu"},
		{winBase(`C:/a/b.msu`), "b.msu"},
		{winBase(`b.msu`), "b.msu"},
		{winDir(`C:\a\b.log`), `C:\a`},
		{winDir(`C:\b.log`), `C:\`},
		{winDir(`b.log`), ``},
		{winExt(`C:\a.b\X.MSU`), ".msu"},
		{winExt(`C:\a.b\noext`), ""},
		{winStem(`C:\u\Windows10.0-KB1-x64.msu`), "Windows10.0-KB1-x64"},
		{safeName("a b(1)é"), "a_b_1___"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
