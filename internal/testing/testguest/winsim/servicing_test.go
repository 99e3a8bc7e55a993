package winsim

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

const (
	lcuMSU = "windows10.0-kb5044281-x64.msu"
	lcuCab = "Windows10.0-KB5044281-x64.cab"
	ssuCab = "ssu-20348.2700-x64.cab"
)

// putPackages writes package files into C:\updates.
func putPackages(t *testing.T, m *Machine, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := m.FS().WriteFile(`C:\updates\`+n, []byte("package "+n)); err != nil {
			t.Fatal(err)
		}
	}
}

func dism(t *testing.T, m *Machine, cab string) result {
	t.Helper()
	return run(t, m, `C:\Windows\System32\dism.exe /Online /Add-Package /PackagePath:C:\updates\`+cab+` /NoRestart /Quiet /English`)
}

func TestServicingCatalogOutcomes(t *testing.T) {
	m := newMachine(t, Options{Packages: []Package{
		{FileName: "kb1-ok.cab"},
		{FileName: "kb2-na.cab", Result: NotApplicable},
		{FileName: "kb3-flaky.cab", Failures: 2},
		{FileName: ssuCab, Identity: "Package_for_ServicingStack_2700~31bf3856ad364e35~amd64~~20348.2700.1.0"},
		{FileName: "kb4-needs-ssu.cab", RequiresSSU: ssuCab},
		{FileName: "kb5-base.cab", Preinstalled: true},
	}})
	putPackages(t, m, "kb1-ok.cab", "kb2-na.cab", "kb3-flaky.cab", ssuCab, "kb4-needs-ssu.cab", "kb5-base.cab")

	expect(t, dism(t, m, "kb1-ok.cab"), 0, "", "")
	expect(t, dism(t, m, "KB1-OK.CAB"), 0, "", "") // already installed: DISM succeeds again
	if s := m.PackageState("kb1-ok.cab"); s != "Installed" {
		t.Errorf("state = %q", s)
	}
	if v, ok, _ := m.Registry().DWORD(cbsPackagesKey+`\Package_for_KB1~31bf3856ad364e35~amd64~~10.0.1.0`, "CurrentState"); !ok || v != 0x70 {
		t.Errorf("CBS CurrentState = %#x, %v", v, ok)
	}
	expect(t, dism(t, m, "kb5-base.cab"), 0, "", "")

	r := dism(t, m, "kb2-na.cab")
	if r.code != ExitNotApplicable || !strings.Contains(r.stdout, "Error: 0x800f081e") || !strings.Contains(r.stdout, "The specified package is not applicable to this image.") {
		t.Errorf("not applicable: %v", r)
	}
	for i := 0; i < 2; i++ {
		if r := dism(t, m, "kb3-flaky.cab"); r.code != ExitInstallersFailed {
			t.Errorf("attempt %d: %v", i+1, r)
		}
	}
	expect(t, dism(t, m, "kb3-flaky.cab"), 0, "", "")

	if r := dism(t, m, "kb4-needs-ssu.cab"); r.code != ExitNeedsNewerSSU {
		t.Errorf("before the SSU: %v", r)
	}
	expect(t, dism(t, m, ssuCab), 0, "", "")
	expect(t, dism(t, m, "kb4-needs-ssu.cab"), 0, "", "")
	if m.RebootPending() {
		t.Error("no package needed a reboot, yet one is pending")
	}

	// Not quiet: DISM's text.
	r = run(t, m, `dism /online /get-packages /english`)
	if r.code != 0 || !strings.Contains(r.stdout, "Package Identity : Package_for_ServicingStack_2700~31bf3856ad364e35~amd64~~20348.2700.1.0\r\nState : Installed\r\n") ||
		!strings.HasPrefix(r.stdout, "\r\nDeployment Image Servicing and Management tool\r\nVersion: 10.0.20348.1\r\n\r\nImage Version: 10.0.20348.2700\r\n") {
		t.Errorf("get-packages: %v", r)
	}
	log, _ := m.FS().ReadFile(dismLog)
	if !bytes.Contains(log, []byte("Add-Package Package_for_KB1")) {
		t.Errorf("dism.log = %q", log)
	}
}

func TestServicingRebootRequired(t *testing.T) {
	m := newMachine(t, Options{Packages: []Package{{FileName: "kb7-reboot.cab", Result: InstallsRebootRequired, UBR: 2762}}})
	putPackages(t, m, "kb7-reboot.cab")
	r := run(t, m, `dism.exe /Online /Add-Package /PackagePath:"C:\updates\kb7-reboot.cab" /NoRestart`)
	if r.code != ExitRebootRequired || !strings.Contains(r.stdout, "Processing 1 of 1 - Adding package Package_for_KB7~") ||
		!strings.HasSuffix(r.stdout, "The operation completed successfully.\r\nRestart Windows to complete this operation.\r\n") {
		t.Errorf("got %v", r)
	}
	for _, k := range []string{RebootPendingKey, PackagesPendingKey + `\Package_for_KB7~31bf3856ad364e35~amd64~~10.0.1.0`, RebootRequiredKey} {
		if ok, _ := m.Registry().KeyExists(k); !ok {
			t.Errorf("%s missing", k)
		}
	}
	expect(t, run(t, m, packerKeyCheck(packerRegistryKeys[1])), 0, "True\r\n", "")
	expect(t, dism(t, m, "kb7-reboot.cab"), ExitRebootRequired, "", "") // still pending
	if s := m.PackageState("kb7-reboot.cab"); s != "Install Pending" {
		t.Errorf("state = %q", s)
	}
	before := m.BootTime()
	if err := m.Reboot(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitBoots(ctxTimeout(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	if !m.BootTime().After(before) {
		t.Errorf("boot time %v not after %v", m.BootTime(), before)
	}
	if s := m.PackageState("kb7-reboot.cab"); s != "Installed" || m.RebootPending() {
		t.Errorf("after the reboot: state %q, pending %v", s, m.RebootPending())
	}
	if w := m.WindowsVersion(); w.UBR != 2762 {
		t.Errorf("UBR = %d", w.UBR)
	}
	expect(t, run(t, m, "ver"), 0, "\r\nMicrosoft Windows [Version 10.0.20348.2762]\r\n", "")
	expect(t, dism(t, m, "kb7-reboot.cab"), 0, "", "")
}

func TestServicingSecondRebootAndSlowServicing(t *testing.T) {
	clock := NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	fp := &fakePower{}
	m := newMachine(t, Options{
		Clock: clock,
		Power: PowerOptions{ShutdownDelay: time.Second, ShutdownTime: time.Second, OffTime: time.Second, BootTime: time.Second, AutoRebootDelay: 30 * time.Second},
		Packages: []Package{{
			FileName: "kb9-twice.cab", SecondReboot: true, InstallTime: time.Minute,
			ShutdownServicing: 5 * time.Minute, BootServicing: 10 * time.Minute,
		}},
	})
	m.SetPowerControl(fp)
	putPackages(t, m, "kb9-twice.cab")

	done := make(chan result)
	go func() { done <- dism(t, m, "kb9-twice.cab") }()
	// DISM runs for a simulated minute.
	waitFor(t, func() bool { return clock.Pending() == 1 })
	select {
	case r := <-done:
		t.Fatalf("DISM finished before its install time: %v", r)
	default:
	}
	clock.Advance(time.Minute)
	expect(t, <-done, ExitRebootRequired, "", "")

	expect(t, run(t, m, `shutdown /r /f /t 0 /c "packer restart"`), 0, "", "")
	fp.take()
	clock.Advance(time.Second) // ShutdownDelay
	if s := m.State(); s != StateServicingOnShutdown {
		t.Fatalf("state %s", s)
	}
	clock.Advance(time.Second + 5*time.Minute - time.Millisecond)
	if s := m.State(); s != StateServicingOnShutdown {
		t.Fatalf("shutdown servicing ended early: %s", s)
	}
	clock.Advance(time.Millisecond + time.Second) // Off, then booting
	if s := m.State(); s != StateBooting {
		t.Fatalf("state %s", s)
	}
	clock.Advance(time.Second + 10*time.Minute)
	if s := m.State(); s != StateUp || m.BootCount() != 2 {
		t.Fatalf("state %s, boots %d", s, m.BootCount())
	}
	// Servicing goes on: still pending, and Windows restarts by itself.
	if s := m.PackageState("kb9-twice.cab"); s != "Install Pending" || !m.RebootPending() {
		t.Errorf("after the first reboot: %q, pending %v", s, m.RebootPending())
	}
	expect(t, run(t, m, packerKeyCheck(packerRegistryKeys[0])), 0, "True\r\n", "")
	clock.Advance(30 * time.Second)
	if s := m.State(); s != StateShutdownPending {
		t.Fatalf("no automatic restart: %s", s)
	}
	clock.Advance(time.Hour)
	if s := m.State(); s != StateUp || m.BootCount() != 3 {
		t.Fatalf("state %s, boots %d", s, m.BootCount())
	}
	if s := m.PackageState("kb9-twice.cab"); s != "Installed" || m.RebootPending() {
		t.Errorf("after the second reboot: %q, pending %v", s, m.RebootPending())
	}
	clock.Advance(time.Hour)
	if m.BootCount() != 3 || clock.Pending() != 0 {
		t.Errorf("boots %d, timers %d: the machine should stay up", m.BootCount(), clock.Pending())
	}
}

func TestServicingKeysClearAfterWinRM(t *testing.T) {
	clock := NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	m := newMachine(t, Options{
		Clock:    clock,
		Power:    PowerOptions{BootTime: time.Second, EarlyWinRM: time.Second, KeysClearDelay: 20 * time.Second},
		Packages: []Package{{FileName: "kb7-reboot.cab", Result: InstallsRebootRequired}},
	})
	putPackages(t, m, "kb7-reboot.cab")
	expect(t, dism(t, m, "kb7-reboot.cab"), ExitRebootRequired, "", "")
	expect(t, run(t, m, `shutdown /r /t 0`), 0, "", "")
	clock.Advance(2 * time.Second)
	if s := m.State(); s != StateUp {
		t.Fatalf("state %s", s)
	}
	// WinRM is back, the package is installed, the keys still say pending.
	if m.PackageState("kb7-reboot.cab") != "Installed" || !m.RebootPending() {
		t.Errorf("state %q, pending %v", m.PackageState("kb7-reboot.cab"), m.RebootPending())
	}
	// Packer's wait loop runs `shutdown /t 60` + `/a` meanwhile; that
	// does not stop the keys from clearing.
	expect(t, run(t, m, `shutdown /r /f /t 60 /c "packer restart test"`), 0, "", "")
	expect(t, run(t, m, `shutdown /a`), 0, "", "")
	// WinRM came back at t=1s (BootTime), now is t=2s: the keys clear at t=21s.
	clock.Advance(19*time.Second - time.Millisecond)
	expect(t, run(t, m, packerKeyCheck(packerRegistryKeys[0])), 0, "True\r\n", "")
	clock.Advance(time.Millisecond)
	expect(t, run(t, m, packerKeyCheck(packerRegistryKeys[0])), 0, "False\r\n", "")
	if m.RebootPending() {
		t.Error("keys did not clear")
	}
}

func TestWusaExpandAndDismOnExtractedCab(t *testing.T) {
	f := &failures{}
	m := newMachine(t, Options{Failf: f.Failf, Packages: []Package{{FileName: lcuMSU, Result: InstallsRebootRequired}}})
	putPackages(t, m, lcuMSU)
	// Over WinRM (a network logon) wusa cannot install.
	expect(t, run(t, m, `wusa.exe C:\updates\`+lcuMSU+` /quiet /norestart`), ExitAccessDenied, "", "")
	expect(t, run(t, m, `mkdir C:\updates\x && wusa C:\updates\`+lcuMSU+` /extract:C:\updates\x`), 0, "", "")
	entries, _ := m.FS().ReadDir(`C:\updates\x`)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "windows10.0-kb5044281-x64-pkgProperties.txt,windows10.0-kb5044281-x64.cab,windows10.0-kb5044281-x64.xml,WSUSSCAN.cab" {
		t.Errorf("extracted %s", got)
	}
	r := run(t, m, `mkdir C:\updates\y && expand.exe -F:* C:\updates\`+lcuMSU+` C:\updates\y`)
	if r.code != 0 || !strings.Contains(r.stdout, `Adding C:\updates\y\WSUSSCAN.cab to Extraction Queue`) || !strings.HasSuffix(r.stdout, "4 files total.\r\n") {
		t.Errorf("expand: %v", r)
	}
	r = run(t, m, `dism /Online /Add-Package /PackagePath:C:\updates\y\windows10.0-kb5044281-x64.cab /NoRestart /Quiet`)
	expect(t, r, ExitRebootRequired, "", "")
	if m.PackageState(lcuMSU) != "Install Pending" {
		t.Errorf("state %q", m.PackageState(lcuMSU))
	}
	// WSUSSCAN.cab is not a package; an .msu given to DISM online and a
	// package outside the catalog are not modelled: all reported.
	if r := run(t, m, `dism /Online /Add-Package /PackagePath:C:\updates\y\WSUSSCAN.cab /NoRestart`); r.code != 2 {
		t.Errorf("WSUSSCAN: %v", r)
	}
	f.expectReported(t, "WSUSSCAN.cab")
	if r := run(t, m, `dism /Online /Add-Package /PackagePath:C:\updates\`+lcuMSU); r.code != ExitNotApplicable {
		t.Errorf("msu: %v", r)
	}
	f.expectReported(t, ".msu")
	if r := run(t, m, `expand -F:* C:\updates\`+lcuMSU+` C:\nowhere`); r.code != 1 {
		t.Errorf("expand into a missing directory: %v", r)
	}
	f.expectReported(t, "does not exist")
	if r := run(t, m, `dism /Online /Add-Package /PackagePath:C:\updates\missing.cab`); r.code != 2 || !strings.Contains(r.stdout, "Error: 0x80070002") {
		t.Errorf("missing file: %v", r)
	}
	if r := run(t, m, `dism /Online /Cleanup-Image /StartComponentCleanup`); r.code != 87 {
		t.Errorf("unknown option: %v", r)
	}
	f.expectReported(t, "/Cleanup-Image")
}

func TestWusaInConsoleSessionAndProcessesRun(t *testing.T) {
	m := newMachine(t, Options{Packages: []Package{
		{FileName: lcuMSU, Result: InstallsRebootRequired},
		{FileName: "windows10.0-kb1-x64.msu", Result: NotApplicable},
		{FileName: "kb1-ok.cab"},
	}})
	putPackages(t, m, lcuMSU, "windows10.0-kb1-x64.msu", "kb1-ok.cab")
	ctx := context.Background()
	wusa := `C:\Windows\System32\wusa.exe`
	code, err := m.Processes().Run(ctx, wusa, []string{`C:\updates\` + lcuMSU, "/quiet", "/norestart"}, nil, nil)
	if err != nil || code != ExitAccessDenied {
		t.Errorf("network logon: %d, %v", code, err)
	}
	console := m.ConsoleSystem().Processes()
	for _, want := range []uint32{ExitRebootRequired, ExitAlreadyInstalled} {
		if code, err := console.Run(ctx, wusa, []string{`C:\updates\` + lcuMSU, "/quiet", "/norestart"}, nil, nil); err != nil || code != want {
			t.Errorf("console: %d, %v; want %d", code, err, want)
		}
	}
	if code, _ := console.Run(ctx, wusa, []string{`C:\updates\windows10.0-kb1-x64.msu`, "/quiet", "/norestart"}, nil, nil); code != ExitWUNotApplicable {
		t.Errorf("not applicable: %d", code)
	}
	var out bytes.Buffer
	code, err = m.Processes().Run(ctx, "dism.exe", []string{"/Online", "/Add-Package", `/PackagePath:C:\updates\kb1-ok.cab`, "/NoRestart"}, &out, nil)
	if err != nil || code != 0 || !strings.Contains(out.String(), "The operation completed successfully.") {
		t.Errorf("dism via Run: %d, %v, %q", code, err, out.String())
	}
	if _, err := m.Processes().Run(ctx, `C:\Windows\System32\nope.exe`, nil, nil, nil); err == nil {
		t.Error("running a missing program succeeded")
	}
}

func TestCatalogValidation(t *testing.T) {
	for _, pkgs := range [][]Package{
		{{FileName: "x.exe"}},
		{{FileName: "a.cab"}, {FileName: "A.CAB"}},
		{{FileName: "a.cab", RequiresSSU: "ssu.cab"}},
		{{FileName: "a.cab", Contents: []string{"b.cab"}}},
	} {
		if _, err := New(Options{StateDir: t.TempDir(), Packages: pkgs}); err == nil {
			t.Errorf("catalog %+v accepted", pkgs)
		}
	}
}

// waitFor polls cond (for goroutines started by the test).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
