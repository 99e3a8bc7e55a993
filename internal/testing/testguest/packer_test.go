package testguest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"
	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// Packer's WinRM communicator (packer-plugin-sdk v0.6.10) against the
// stand-in: what every Packer build with a Windows guest goes through.

// Commands Packer itself sends (packer-plugin-sdk step_connect_winrm.go,
// packer provisioner/windows-restart).
var (
	connectCheckCommand = winrm.Powershell(`if (Test-Path variable:global:ProgressPreference){$ProgressPreference='SilentlyContinue'}; echo "WinRM connected."`)
	restartCommand      = `shutdown /r /f /t 0 /c "packer restart"`
	tryCheckReboot      = `shutdown /r /f /t 60 /c "packer restart test"`
	abortReboot         = `shutdown /a`
	restartCheckCommand = winrm.Powershell(`echo ("{0} restarted." -f [System.Net.Dns]::GetHostName())`)
)

func communicator(t *testing.T, g *Guest, timeout time.Duration) *sdkwinrm.Communicator {
	t.Helper()
	h, p := g.HostPort()
	user, pass := g.Credentials()
	comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: h, Port: p, Username: user, Password: pass, Timeout: timeout})
	if err != nil {
		t.Fatalf("communicator: %v", err)
	}
	return comm
}

// start runs a RemoteCmd as a provisioner does, with a watchdog: Packer's
// communicator has no HTTP timeout of its own.
func start(t *testing.T, comm *sdkwinrm.Communicator, command string, limit time.Duration) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: command, Stdout: &out, Stderr: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- comm.Start(ctx, rc) }()
	select {
	case err = <-done:
	case <-time.After(limit + 5*time.Second):
		t.Fatalf("%q: no answer %v after its deadline", command, 5*time.Second)
	}
	return out.String(), errb.String(), rc.ExitStatus(), err
}

func TestPackerCommunicatorStart(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{ComputerName: "packer-win"})
	comm := communicator(t, g, 30*time.Second)

	out, errOut, code, err := start(t, comm, connectCheckCommand, 20*time.Second)
	if err != nil || code != 0 || out != "WinRM connected.\r\n" || errOut != "" {
		t.Errorf("connect check: exit %d, err %v, stdout %q, stderr %q", code, err, out, errOut)
	}
	out, _, code, err = start(t, comm, `echo provisioning && exit /b 3010`, 20*time.Second)
	if err != nil || code != 3010 || out != "provisioning \r\n" {
		t.Errorf("exit code: exit %d, err %v, stdout %q", code, err, out)
	}
	out, _, code, err = start(t, comm, restartCheckCommand, 20*time.Second)
	if err != nil || code != 0 || out != "packer-win restarted.\r\n" {
		t.Errorf("restart check: exit %d, err %v, stdout %q", code, err, out)
	}
}

func TestPackerUploadAndDownload(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{})
	comm := communicator(t, g, 30*time.Second)
	const size = 200 << 10
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.UintN(256))
	}
	const dest = `C:\Windows\Temp\winbake\payload.bin`

	before := map[wsman.Op]int{}
	ops := []wsman.Op{wsman.OpCreate, wsman.OpCommand, wsman.OpReceive, wsman.OpSignal, wsman.OpDelete}
	for _, op := range append(ops, wsman.OpAny) {
		before[op] = g.Server.RequestCount(op)
	}
	startAt := time.Now()
	if err := comm.Upload(dest, bytes.NewReader(data), nil); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	elapsed := time.Since(startAt)
	got, err := g.Machine.FS().ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("uploaded file: %d bytes, not the %d sent", len(got), len(data))
	}
	requests := g.Server.RequestCount(wsman.OpAny) - before[wsman.OpAny]
	var perOp []string
	for _, op := range ops {
		perOp = append(perOp, op.String()+" "+itoa(g.Server.RequestCount(op)-before[op]))
	}
	mib := float64(size) / (1 << 20)
	t.Logf("winrmcp upload baseline: %d KiB in %v = %.0f KiB/s; %d HTTP requests (%s) = %.0f requests/MiB",
		size>>10, elapsed.Round(time.Millisecond), float64(size>>10)/elapsed.Seconds(), requests, strings.Join(perOp, ", "), float64(requests)/mib)
	// winrmcp: one `echo` command per ~5.9 KB chunk, 15 commands per shell,
	// then restore and cleanup (winrm-protocol.md §9: 70 requests for
	// 100 KiB); so about 700 requests per MiB.
	if perMiB := float64(requests) / mib; perMiB < 550 || perMiB > 800 {
		t.Errorf("%.0f requests per MiB, want about 700 (winrmcp's chunking)", perMiB)
	}
	// No temporary file left behind.
	entries, err := g.Machine.FS().ReadDir(`C:\Users\vagrant\AppData\Local\Temp`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "winrmcp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	// Download reads it back (PowerShell ReadAllBytes + base64).
	var back bytes.Buffer
	if err := comm.Download(dest, &back); err != nil {
		t.Fatalf("Download: %v", err)
	}
	if !bytes.Equal(back.Bytes(), data) {
		t.Errorf("downloaded %d bytes, not the %d uploaded", back.Len(), len(data))
	}

	// Uploading onto a directory fails as winrmcp reports it.
	err = comm.Upload(`C:\Windows\Temp\winbake`, strings.NewReader("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "restore operation returned code=1") {
		t.Errorf("upload onto a directory: %v", err)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Packer's windows-restart provisioner, step by step: the restart
// command, the "restart test" loop until the guest is back, shutdown /a,
// then the restart check with the host name.
func TestPackerRestartSequence(t *testing.T) {
	t.Parallel()
	pw := fastPower()
	pw.BootTime = 600 * time.Millisecond
	g := StartForTest(t, Options{Power: pw, ComputerName: "packer-win"})
	comm := communicator(t, g, 10*time.Second)
	boot := g.Machine.BootTime()

	if _, errOut, code, err := start(t, comm, restartCommand, 10*time.Second); err != nil || code != 0 {
		t.Fatalf("restart command: exit %d, err %v, stderr %q", code, err, errOut)
	}
	var seen []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the guest never came back; loop saw %v", seen)
		}
		_, errOut, code, err := start(t, comm, tryCheckReboot, 10*time.Second)
		if err != nil {
			seen = append(seen, "communicator error")
			time.Sleep(50 * time.Millisecond) // Packer: 10 s
			continue
		}
		if code == 1115 || code == 1190 {
			if code == 1115 && errOut != "A system shutdown is in progress.(1115)\r\n" {
				t.Errorf("1115 with stderr %q", errOut)
			}
			seen = append(seen, "exit "+itoa(code))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if code != 0 {
			t.Fatalf("restart test: exit %d, stderr %q", code, errOut)
		}
		break
	}
	if len(seen) == 0 {
		t.Errorf("the restart test succeeded at once: the guest never went down")
	}
	t.Logf("restart test loop saw %v", seen)
	if _, _, code, err := start(t, comm, abortReboot, 10*time.Second); err != nil || code != 0 {
		t.Errorf("shutdown /a: exit %d, err %v", code, err)
	}
	out, _, code, err := start(t, comm, restartCheckCommand, 10*time.Second)
	if err != nil || code != 0 || out != "packer-win restarted.\r\n" {
		t.Errorf("restart check: exit %d, err %v, stdout %q", code, err, out)
	}
	if !g.Machine.BootTime().After(boot) {
		t.Errorf("boot time unchanged")
	}
	// The aborted restart test left the machine up.
	time.Sleep(200 * time.Millisecond)
	if s := g.Machine.State(); s != winsim.StateUp {
		t.Errorf("state %s after shutdown /a", s)
	}
	if _, _, code, _ := start(t, comm, abortReboot, 10*time.Second); code != 1116 {
		t.Errorf("second shutdown /a: exit %d, want 1116 (nothing scheduled)", code)
	}
}

// Slow responses: every request delayed, the communicator still works,
// just slower.
func TestPackerSlowResponses(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{})
	comm := communicator(t, g, 30*time.Second)
	const base = 150 * time.Millisecond
	g.Server.SetLatency(base, 100*time.Millisecond)
	before := g.Server.RequestCount(wsman.OpAny)
	startAt := time.Now()
	out, _, code, err := start(t, comm, connectCheckCommand, 30*time.Second)
	el := time.Since(startAt)
	if err != nil || code != 0 || out != "WinRM connected.\r\n" {
		t.Fatalf("connect check: exit %d, err %v, stdout %q", code, err, out)
	}
	n := g.Server.RequestCount(wsman.OpAny) - before
	if el < time.Duration(n)*base {
		t.Errorf("%d requests in %v: latency %v per request not applied", n, el, base)
	}
	// A single Receive slower than the client's OperationTimeout-derived
	// patience is still awaited (Packer's Timeout 0: no HTTP deadline).
	g.Server.SetLatency(0, 0)
	g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectNone, Delay: 1500 * time.Millisecond})
	out, _, code, err = start(t, comm, `echo slow`, 30*time.Second)
	if err != nil || code != 0 || out != "slow\r\n" {
		t.Errorf("delayed Receive: exit %d, err %v, stdout %q", code, err, out)
	}
}
