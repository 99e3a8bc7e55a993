package testguest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// masterzen (the client under Packer's communicator and winbake's own
// WinRM code) against the whole stand-in.

func TestMasterzenCommands(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{ComputerName: "WINBAKE-01", TLSAddr: "127.0.0.1:0", QuietModuleLoad: true})
	c := client(t, g, "PT5S", 0)

	if r := mustRun(t, c, "echo hi"); r.stdout != "hi\r\n" || r.stderr != "" {
		t.Errorf("echo: %v", r)
	}
	if r := mustRun(t, c, "hostname"); r.stdout != "WINBAKE-01\r\n" {
		t.Errorf("hostname: %q", r.stdout)
	}
	if r := mustRun(t, c, "ver"); r.stdout != "\r\nMicrosoft Windows [Version 10.0.20348.2700]\r\n" {
		t.Errorf("ver: %q", r.stdout)
	}
	if r := mustRun(t, c, "echo %USERNAME% %TEMP%"); r.stdout != `vagrant C:\Users\vagrant\AppData\Local\Temp`+"\r\n" {
		t.Errorf("environment: %q", r.stdout)
	}
	// stdout and stderr apart (each echo keeps the blank before &&), the
	// exit code of the last command.
	r := runCmd(t, c, "echo out && echo err>&2 && exit /b 3010", 20*time.Second)
	if r.err != nil || r.code != 3010 || r.stdout != "out \r\n" || r.stderr != "err \r\n" {
		t.Errorf("stderr and exit code: %v", r)
	}
	// PowerShell through masterzen's -EncodedCommand wrapper.
	r = runCmd(t, c, winrm.Powershell(`Write-Output "name: $env:COMPUTERNAME"; Write-Host 'host'; exit 7`), 20*time.Second)
	if r.err != nil || r.code != 7 || r.stdout != "name: WINBAKE-01\r\nhost\n" || r.stderr != "" {
		t.Errorf("PowerShell: %v", r)
	}
	// The same guest over NTLM and over HTTPS.
	h, p := g.HostPort()
	params := winrm.NewParameters("PT5S", "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	nc, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: h, Port: p}, "vagrant", "vagrant", params)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, nc, "echo ntlm"); r.stdout != "ntlm\r\n" {
		t.Errorf("NTLM: %q", r.stdout)
	}
	th, tp := splitHostPort(t, g.TLSAddr())
	tc, err := winrm.NewClient(&winrm.Endpoint{Host: th, Port: tp, HTTPS: true, Insecure: true}, "vagrant", "vagrant")
	if err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, tc, "echo tls"); r.stdout != "tls\r\n" {
		t.Errorf("HTTPS: %q", r.stdout)
	}
	// Wrong password: 401, and nothing ran.
	bad, _ := winrm.NewClient(&winrm.Endpoint{Host: h, Port: p}, "vagrant", "wrong")
	if r := runCmd(t, bad, "echo x", 10*time.Second); r.err == nil || r.err.Error() != "http response error: 401 - invalid content type" {
		t.Errorf("wrong password: %v", r)
	}
}

func TestMasterzenLargeChunkedOutput(t *testing.T) {
	t.Parallel()
	// ChunkSize splits the output at arbitrary byte boundaries; the output
	// is bigger than the server's queue (held back like a full pipe) and
	// than one envelope.
	g := StartForTest(t, Options{Server: wsman.Options{ChunkSize: 7001, MaxQueuedOutput: 256 << 10}})
	var b strings.Builder
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "line %06d: %s\r\n", i, strings.Repeat(string(rune('a'+i%26)), i%97))
	}
	want := b.String()
	if err := g.Machine.FS().WriteFile(`C:\data\big.txt`, []byte(want)); err != nil {
		t.Fatal(err)
	}
	c := client(t, g, "PT5S", 0)
	before := g.Server.RequestCount(wsman.OpReceive)
	start := time.Now()
	r := mustRun(t, c, `type C:\data\big.txt`)
	if r.stdout != want {
		t.Fatalf("type: %d bytes, want %d (first difference at %d)", len(r.stdout), len(want), firstDiff(r.stdout, want))
	}
	n := g.Server.RequestCount(wsman.OpReceive) - before
	if n < 2 {
		t.Errorf("%d Receives for 3 MiB: the output was not chunked", n)
	}
	t.Logf("3 MiB of output in %d Receives, %v", n, time.Since(start))
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestMasterzenExitCodesAreUnsigned(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{Packages: []winsim.Package{
		{FileName: "windows10.0-kb5000001-x64.cab", Result: winsim.NotApplicable},
		{FileName: "windows10.0-kb5000002-x64.msu", Result: winsim.Installs},
	}})
	for _, f := range []string{`C:\updates\windows10.0-kb5000001-x64.cab`, `C:\updates\windows10.0-kb5000002-x64.msu`} {
		if err := g.Machine.FS().WriteFile(f, []byte("MSCF")); err != nil {
			t.Fatal(err)
		}
	}
	c := client(t, g, "PT5S", 0)
	for _, tc := range []struct {
		line string
		code int
	}{
		{`exit /b -1`, 4294967295},
		{`exit /b -2146498530`, 2148468766},
		{`dism.exe /Online /Add-Package /PackagePath:C:\updates\windows10.0-kb5000001-x64.cab /NoRestart /Quiet`, 2148468766},
		// wusa over WinRM: a network logon, access denied.
		{`wusa.exe C:\updates\windows10.0-kb5000002-x64.msu /quiet /norestart`, 5},
		{winrm.Powershell(`exit 3010`), 3010},
	} {
		r := runCmd(t, c, tc.line, 20*time.Second)
		if r.err != nil || r.code != tc.code {
			t.Errorf("%q: exit %d (err %v), want %d\nstdout %q\nstderr %q", tc.line, r.code, r.err, tc.code, r.stdout, r.stderr)
		}
	}
}

// traceOps records the status of every exchange of one operation.
type traceOps struct {
	mu     sync.Mutex
	status map[wsman.Op][]int
}

func (tr *traceOps) add(e wsman.Exchange) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.status == nil {
		tr.status = map[wsman.Op][]int{}
	}
	tr.status[e.Op] = append(tr.status[e.Op], e.Status)
}

func (tr *traceOps) count(op wsman.Op, status int) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, s := range tr.status[op] {
		if s == status {
			n++
		}
	}
	return n
}

func TestMasterzenSurvivesReceiveTimeouts(t *testing.T) {
	t.Parallel()
	var tr traceOps
	g := StartForTest(t, Options{QuietModuleLoad: true, Server: wsman.Options{Trace: tr.add}})
	c := client(t, g, "PT0.4S", 0)
	// Natural long-poll expiries (1 s of silence under a 0.4 s
	// OperationTimeout) and three injected w:TimedOut faults.
	g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectTimeout, Times: 3})
	r := runCmd(t, c, winrm.Powershell(`Write-Output a; Start-Sleep 1; Write-Output b; exit 3010`), 20*time.Second)
	if r.err != nil || r.code != 3010 || r.stdout != "a\r\nb\r\n" {
		t.Fatalf("%+v", r)
	}
	if n := tr.count(wsman.OpReceive, 500); n < 5 {
		t.Errorf("%d Receive faults, want the 3 injected and at least 2 expiries", n)
	}
	if g.Server.PendingInjections() != 0 {
		t.Errorf("injections left unused")
	}
}

// startLongCommand runs a PowerShell sleep in the background and waits
// until its Receive is pending at the server.
func startLongCommand(t *testing.T, g *Guest, c *winrm.Client) <-chan result {
	t.Helper()
	before := g.Server.RequestCount(wsman.OpReceive)
	done := make(chan result, 1)
	go func() {
		var out, errb strings.Builder
		code, err := c.RunWithContext(context.Background(), winrm.Powershell(`Write-Output started; Start-Sleep 60; Write-Output never`), &out, &errb)
		done <- result{stdout: out.String(), stderr: errb.String(), code: code, err: err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for g.Server.RequestCount(wsman.OpReceive) < before+2 {
		if time.Now().After(deadline) {
			t.Fatal("the long command's Receive never came")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done
}

// Packer's restart while a command runs: the command's pending Receive is
// cut when WinRM stops, with FIN (masterzen: 16001 and EOF) or RST (exit
// code 0 and a reset), then the guest comes back with a new boot time,
// its files, and none of its shells.
func TestMasterzenRebootMidCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop wsman.ListenerState
		code int
		err  string
	}{
		{"FIN", wsman.ListenerDropFIN, 16001, "EOF"},
		{"RST", wsman.ListenerDropRST, 0, "connection reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pw := fastPower()
			pw.Drop = tc.drop
			g := StartForTest(t, Options{Power: pw, QuietModuleLoad: true})
			c := client(t, g, "PT0.5S", 0)
			boot := g.Machine.BootTime()
			mustRun(t, c, `echo keep> %TEMP%\persist.txt`)
			shell, err := c.CreateShell()
			if err != nil {
				t.Fatal(err)
			}

			long := startLongCommand(t, g, c)
			r := mustRun(t, c, `shutdown /r /f /t 0 /c "packer restart"`)
			if r.stdout != "" || r.stderr != "" {
				t.Errorf("shutdown printed %+v", r)
			}
			var lr result
			select {
			case lr = <-long:
			case <-time.After(10 * time.Second):
				t.Fatal("the running command never ended")
			}
			if lr.code != tc.code || lr.err == nil || !strings.Contains(lr.err.Error(), tc.err) {
				t.Errorf("running command: exit %d, err %v; want %d and %q", lr.code, lr.err, tc.code, tc.err)
			}
			if lr.stdout != "started\r\n" {
				t.Errorf("running command's output %q", lr.stdout)
			}

			if err := g.Machine.WaitBoots(ctxTimeout(t, 10*time.Second), 2); err != nil {
				t.Fatal(err)
			}
			if !g.Machine.BootTime().After(boot) {
				t.Errorf("boot time %v, before the reboot %v", g.Machine.BootTime(), boot)
			}
			if r := mustRun(t, c, `type %TEMP%\persist.txt & hostname`); r.stdout != "keep\r\nWIN-SIMULATED\r\n" {
				t.Errorf("after the reboot: %q", r.stdout)
			}
			// The shell opened before the reboot is gone.
			_, err = shell.ExecuteWithContext(context.Background(), "echo", "x")
			var ece *winrm.ExecuteCommandError
			if !errors.As(err, &ece) || !strings.Contains(ece.Body, `Code="2150858843"`) || !strings.Contains(ece.Body, "w:InvalidSelectors") {
				t.Errorf("command in a shell from before the reboot: %v", err)
			}
		})
	}
}

func TestMasterzenPowerStates(t *testing.T) {
	t.Parallel()
	pw := fastPower()
	pw.Boot = wsman.ListenerUnavailable
	pw.BootTime = 700 * time.Millisecond
	pw.EarlyWinRM = 700 * time.Millisecond
	pw.EarlyCreateFault = true
	g := StartForTest(t, Options{Power: pw})
	c := client(t, g, "PT1S", 2*time.Second)
	ctx := ctxTimeout(t, 20*time.Second)

	// 503 while booting.
	if err := g.Machine.Reboot(); err != nil {
		t.Fatal(err)
	}
	if err := g.Machine.WaitState(ctx, winsim.StateBooting); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, c, "echo hi", 5*time.Second); r.err == nil || r.err.Error() != "http response error: 503 - invalid content type" {
		t.Errorf("booting: %v", r)
	}
	// Early in boot, Create fails with the shell plugin's 0x800703FA.
	if err := g.Machine.WaitState(ctx, winsim.StateWinRMEarly); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateShell()
	var ece *winrm.ExecuteCommandError
	if !errors.As(err, &ece) || !strings.Contains(ece.Body, `Code="2147943418"`) {
		t.Errorf("Create early in boot: %v", err)
	}
	if err := g.Machine.WaitBoots(ctx, 2); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "echo up")

	// Refused while off (shutdown /s: off until powered on).
	mustRun(t, c, "shutdown /s /t 0")
	if err := g.Machine.WaitState(ctx, winsim.StateOff); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, c, "echo hi", 5*time.Second); r.err == nil || !strings.Contains(r.err.Error(), "connect: connection refused") {
		t.Errorf("off: %v", r)
	}
	if err := g.Machine.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if err := g.Machine.WaitBoots(ctx, 3); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "echo up again")
}

// A guest that blackholes while off: connections are accepted and never
// answered; only the client's own HTTP timeout ends the request.
func TestMasterzenBlackholeWhileOff(t *testing.T) {
	t.Parallel()
	pw := fastPower()
	pw.Off = wsman.ListenerBlackhole
	g := StartForTest(t, Options{Power: pw})
	c := client(t, g, "PT1S", 500*time.Millisecond)
	mustRun(t, c, "shutdown /s /t 0")
	if err := g.Machine.WaitState(ctxTimeout(t, 10*time.Second), winsim.StateOff); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runCmd(t, c, "echo hi", 5*time.Second)
	if r.err == nil || !strings.Contains(r.err.Error(), "timeout awaiting response headers") {
		t.Errorf("blackholed: %v", r)
	}
	if el := time.Since(start); el < 450*time.Millisecond {
		t.Errorf("blackholed request ended after %v, before the client's timeout", el)
	}
	if err := g.Machine.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if err := g.Machine.WaitBoots(ctxTimeout(t, 10*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "echo back")
}
