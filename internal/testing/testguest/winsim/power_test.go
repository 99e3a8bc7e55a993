package winsim

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

func fakeClock() *FakeClock { return NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) }

func checkCalls(t *testing.T, fp *fakePower, want ...string) {
	t.Helper()
	if got := fp.take(); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("listener calls %q, want %q", got, want)
	}
}

func checkState(t *testing.T, m *Machine, want PowerState) {
	t.Helper()
	if s := m.State(); s != want {
		t.Fatalf("state %s, want %s", s, want)
	}
}

// TestPowerSequenceOfPackerRestart follows windows-restart: the restart
// command, its /t 60 check while the shutdown is in progress, the listener
// through every phase, and the boot.
func TestPowerSequenceOfPackerRestart(t *testing.T) {
	clock := fakeClock()
	fp := &fakePower{}
	m := newMachine(t, Options{Clock: clock, Power: PowerOptions{
		ShutdownDelay: 2 * time.Second, Drop: wsman.ListenerDropRST, ShutdownTime: 3 * time.Second,
		Off: wsman.ListenerBlackhole, OffTime: time.Second, Boot: wsman.ListenerUnavailable, BootTime: 4 * time.Second,
		EarlyWinRM: 2 * time.Second, EarlyCreateFault: true,
	}})
	m.SetPowerControl(fp)
	checkCalls(t, fp, "up")
	boot1 := m.BootTime()

	expect(t, run(t, m, `shutdown /r /f /t 0 /c "packer restart"`), 0, "", "")
	checkState(t, m, StateShutdownPending)
	// Commands still work; the check command sees the shutdown in progress.
	expect(t, run(t, m, `shutdown /r /f /t 60 /c "packer restart test"`), 1115, "", "A system shutdown is in progress.(1115)\r\n")
	expect(t, run(t, m, `shutdown /a`), 1116, "", "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n")
	expect(t, run(t, m, packerRestartCheck), 0, "WIN-SIMULATED restarted.\r\n", "")
	checkCalls(t, fp)

	clock.Advance(2 * time.Second)
	checkState(t, m, StateServicingOnShutdown)
	checkCalls(t, fp, "rst", "discard")
	if _, err := m.Start(context.Background(), wsman.CommandRequest{Command: "hostname", User: "vagrant"}); err == nil {
		t.Error("a command started while WinRM is stopped")
	} else if f, ok := err.(*wsman.CommandFault); !ok || f.Code != 2147943515 {
		t.Errorf("err = %v", err)
	}
	clock.Advance(3 * time.Second)
	checkState(t, m, StateOff)
	checkCalls(t, fp, "blackhole")
	clock.Advance(time.Second)
	checkState(t, m, StateBooting)
	checkCalls(t, fp, "503")
	if m.BootCount() != 2 || !m.BootTime().After(boot1) {
		t.Errorf("boots %v", m.Boots())
	}
	clock.Advance(4 * time.Second)
	checkState(t, m, StateWinRMEarly)
	checkCalls(t, fp, "up")
	if f := m.CreateFault(); f == nil || f.Code != 2147943418 {
		t.Errorf("CreateFault = %v", f)
	}
	clock.Advance(2 * time.Second)
	checkState(t, m, StateUp)
	checkCalls(t, fp)
	if f := m.CreateFault(); f != nil {
		t.Errorf("CreateFault = %v", f)
	}
	if got, want := strings.Join(states(m.Transitions()), ","), "Booting,Up,ShutdownPending,ServicingOnShutdown,Off,Booting,WinRMEarly,Up"; got != want {
		t.Errorf("transitions %s, want %s", got, want)
	}
	tr := m.Transitions()
	if at := tr[len(tr)-1].At.Sub(tr[2].At); at != 12*time.Second {
		t.Errorf("restart took %s", at)
	}
	if bt, _ := m.Power().BootTime(); !bt.Equal(m.BootTime()) {
		t.Errorf("agent BootTime %v", bt)
	}
}

// TestShutdownCheckWhenIdle is Packer's "is it rebooting?" probe on a
// machine that is not: /t 60 succeeds and is aborted.
func TestShutdownCheckWhenIdle(t *testing.T) {
	clock := fakeClock()
	m := newMachine(t, Options{Clock: clock})
	expect(t, run(t, m, `shutdown /r /f /t 60 /c "packer restart test"`), 0, "", "")
	checkState(t, m, StateShutdownPending)
	expect(t, run(t, m, `shutdown /r /f /t 60 /c "again"`), 1190, "", "A system shutdown has already been scheduled.(1190)\r\n")
	expect(t, run(t, m, `shutdown /s /t 0`), 1190, "", "A system shutdown has already been scheduled.(1190)\r\n")
	expect(t, run(t, m, `shutdown /a`), 0, "", "")
	checkState(t, m, StateUp)
	expect(t, run(t, m, `shutdown /a`), 1116, "", "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n")
	clock.Advance(time.Hour)
	if m.BootCount() != 1 {
		t.Error("an aborted shutdown happened")
	}
	// Not aborted, the countdown runs out and the machine restarts.
	expect(t, run(t, m, `shutdown -r -t 10`), 0, "", "")
	clock.Advance(10*time.Second - time.Millisecond)
	checkState(t, m, StateShutdownPending)
	expect(t, run(t, m, `hostname`), 0, "WIN-SIMULATED\r\n", "")
	clock.Advance(time.Millisecond)
	checkState(t, m, StateUp)
	if m.BootCount() != 2 {
		t.Errorf("boots %d", m.BootCount())
	}
}

func TestPowerOffStaysOff(t *testing.T) {
	clock := fakeClock()
	fp := &fakePower{}
	m := newMachine(t, Options{Clock: clock, Power: PowerOptions{OffTime: time.Second, BootTime: time.Second}})
	m.SetPowerControl(fp)
	fp.take()
	expect(t, run(t, m, `shutdown /s /t 0`), 0, "", "")
	checkState(t, m, StateOff)
	checkCalls(t, fp, "fin", "discard", "refused")
	clock.Advance(24 * time.Hour)
	checkState(t, m, StateOff)
	if clock.Pending() != 0 {
		t.Errorf("%d timers pending while off", clock.Pending())
	}
	if err := m.Reboot(); err == nil {
		t.Error("Reboot while off succeeded")
	}
	if err := m.PowerOn(); err != nil {
		t.Fatal(err)
	}
	checkState(t, m, StateBooting)
	clock.Advance(time.Second)
	checkState(t, m, StateUp)
	checkCalls(t, fp, "up")
	if err := m.PowerOn(); err == nil {
		t.Error("PowerOn while up succeeded")
	}
	if m.BootCount() != 2 {
		t.Errorf("boots %d", m.BootCount())
	}
}

func TestResetAndRunningProcesses(t *testing.T) {
	m := newMachine(t, Options{Power: PowerOptions{ShutdownDelay: 50 * time.Millisecond, OffTime: 10 * time.Millisecond}})
	fp := &fakePower{}
	m.SetPowerControl(fp)
	// A long command dies with the machine.
	p, err := m.Start(context.Background(), wsman.CommandRequest{Command: winrm.Powershell("Start-Sleep 300"), User: "vagrant"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if err := m.Reboot(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitState(ctx, StateServicingOnShutdown); err != nil {
		t.Fatal(err)
	}
	done := make(chan uint32)
	go func() { done <- p.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the command survived the shutdown")
	}
	if err := m.WaitBoots(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// A hard reset: no shutdown servicing, straight to off.
	fp.take()
	m.Reset()
	if err := m.WaitBoots(ctx, 3); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, fp, "fin", "discard", "refused", "up")
	tr := states(m.Transitions())
	if got := strings.Join(tr[len(tr)-4:], ","); got != "Off,Booting,Up" && got != "Up,Off,Booting,Up" {
		t.Errorf("reset transitions %s", got)
	}
	// WaitState gives up with the context.
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.WaitState(short, StateOff); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitState = %v", err)
	}
}

func TestTerminate(t *testing.T) {
	m := newMachine(t, Options{})
	p, err := m.Start(context.Background(), wsman.CommandRequest{Command: winrm.Powershell("Write-Host started; Start-Sleep 300"), User: "vagrant"})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 8)
	for string(got) != "started\n" {
		n, err := p.Stdout().Read(buf)
		if err != nil {
			t.Fatalf("stdout %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	p.Terminate()
	if code := p.Wait(); code != ExitTerminated {
		t.Errorf("exit %d", code)
	}
	if rest := readAll(t, p.Stdout()); rest != "" {
		t.Errorf("rest of stdout %q", rest)
	}
}

func TestAgentPower(t *testing.T) {
	clock := fakeClock()
	m := newMachine(t, Options{Clock: clock})
	pw := m.Power()
	if err := pw.Restart(30*time.Second, "winbake"); err != nil {
		t.Fatal(err)
	}
	if err := pw.Restart(0, "again"); !errors.Is(err, ErrorShutdownScheduled) {
		t.Errorf("second restart: %v", err)
	}
	clock.Advance(30 * time.Second)
	if m.BootCount() != 2 || m.State() != StateUp {
		t.Errorf("boots %d, state %s", m.BootCount(), m.State())
	}
	if err := pw.PowerOff(0, "done"); err != nil {
		t.Fatal(err)
	}
	checkState(t, m, StateOff)
}

func TestSysprep(t *testing.T) {
	clock := fakeClock()
	f := &failures{}
	m := newMachine(t, Options{Clock: clock, Failf: f.Failf, Power: PowerOptions{SysprepTime: time.Minute},
		Packages: []Package{{FileName: "kb7-reboot.cab", Result: InstallsRebootRequired}}})
	if err := m.FS().WriteFile(`C:\Program Files\Cloudbase Solutions\Cloudbase-Init\conf\Unattend.xml`, []byte("<unattend/>")); err != nil {
		t.Fatal(err)
	}
	sysprep := `C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown /quiet "/unattend:C:\Program Files\Cloudbase Solutions\Cloudbase-Init\conf\Unattend.xml"`

	// A pending reboot makes sysprep fail.
	putPackages(t, m, "kb7-reboot.cab")
	expect(t, dism(t, m, "kb7-reboot.cab"), ExitRebootRequired, "", "")
	expect(t, run(t, m, sysprep), 1, "", "")
	if log, _ := m.FS().ReadFile(`C:\Windows\System32\Sysprep\Panther\setuperr.log`); !strings.Contains(string(log), "require a reboot") {
		t.Errorf("setuperr.log = %q", log)
	}
	if err := m.Reboot(); err != nil {
		t.Fatal(err)
	}
	checkState(t, m, StateUp)

	// Over WinRM the command never returns: the machine powers off under it.
	p, err := m.Start(context.Background(), wsman.CommandRequest{Command: sysprep, User: "vagrant"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return clock.Pending() == 1 })
	clock.Advance(time.Minute)
	p.Wait()
	checkState(t, m, StateOff)
	if !m.Generalized() {
		t.Error("not generalized")
	}
	if v, _, _ := m.Registry().String(setupStateKey, "ImageState"); v != "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE" {
		t.Errorf("ImageState %q", v)
	}
	if err := m.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if r := run(t, m, `C:\Windows\System32\Sysprep\sysprep.exe /generalize /shutdown`); r.code != 87 {
		t.Errorf("without /oobe: %v", r)
	}
	f.expectReported(t, "/oobe")
}

func TestPowerOptionsValidation(t *testing.T) {
	for _, po := range []PowerOptions{{Drop: wsman.ListenerRefused}, {Off: wsman.ListenerDropFIN}, {Boot: wsman.ListenerBlackhole}} {
		if _, err := New(Options{StateDir: t.TempDir(), Power: po}); err == nil {
			t.Errorf("%+v accepted", po)
		}
	}
}
