package testguest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// Faults of the list in winrm-protocol.md §12 and where they are tested:
//
//	drop by FIN / RST mid-Receive  TestInjectedDropsMidReceive (here, on a
//	                               real process), TestMasterzenRebootMidCommand;
//	                               wsman: TestClientDropFINMidReceive,
//	                               TestClientDropRSTMidReceive,
//	                               TestClientListenerDropsPendingReceive
//	blackhole                      TestInjectedBlackholeReceive,
//	                               TestMasterzenBlackholeWhileOff; wsman:
//	                               TestListenerBlackhole, TestClientResendsBlackholedReceive
//	Receive timeout fault          TestMasterzenSurvivesReceiveTimeouts; wsman:
//	                               TestClientSurvivesReceiveTimeouts, TestReceiveLongPoll
//	503                            TestMasterzenPowerStates; wsman:
//	                               TestClientUnavailable503, TestListenerUnavailable
//	slow responses                 TestPackerSlowResponses; wsman:
//	                               TestInjectionLatencyAndAfterHandling
//	reboot at an arbitrary moment  TestRebootAtArbitraryMoments
//	early-boot Create fault        TestMasterzenPowerStates; wsman:
//	                               TestInjectedCreateFaultEarlyBoot, TestHostCreateFault

func TestInjectedDropsMidReceive(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{QuietModuleLoad: true})
	c := client(t, g, "PT5S", 0)
	for _, tc := range []struct {
		effect wsman.Effect
		code   int
		err    string
	}{
		{wsman.EffectDropFIN, 16001, "EOF"},
		{wsman.EffectDropRST, 0, "connection reset by peer"},
	} {
		// The second Receive is cut: the first brought "first".
		g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectNone})
		g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: tc.effect, Delay: 100 * time.Millisecond})
		r := runCmd(t, c, winrm.Powershell(`Write-Output first; Start-Sleep 1; Write-Output second`), 20*time.Second)
		if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.err) || r.stdout != "first\r\n" {
			t.Errorf("effect %d: %v; want exit %d and %q after the first line", tc.effect, r, tc.code, tc.err)
		}
		// The guest is unharmed.
		if r := mustRun(t, c, "echo next"); r.stdout != "next\r\n" {
			t.Errorf("after the drop: %v", r)
		}
	}
}

// A blackholed Receive: masterzen's HTTP timeout fires and it sends the
// Receive again; no output is lost.
func TestInjectedBlackholeReceive(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{QuietModuleLoad: true})
	c := client(t, g, "PT0.3S", time.Second)
	g.Server.Inject(wsman.Injection{Op: wsman.OpReceive, Effect: wsman.EffectBlackhole, Times: 2})
	r := runCmd(t, c, winrm.Powershell(`Write-Output one; Start-Sleep 1; Write-Output two; exit 5`), 20*time.Second)
	if r.err != nil || r.code != 5 || r.stdout != "one\r\ntwo\r\n" {
		t.Errorf("%v", r)
	}
}

// TestRebootAtArbitraryMoments keeps a client busy with commands of every
// kind while the guest reboots or is reset at random moments, the reset
// also landing inside the shutdown and boot sequence. Every command that
// succeeds has exactly its output; every other one ends with an error
// (never a hang, never a wrong success); after each reboot the guest
// serves again with a new boot time.
func TestRebootAtArbitraryMoments(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	pw := fastPower()
	pw.Drop = wsman.ListenerDropRST
	if rng.IntN(2) == 0 {
		pw.Drop = wsman.ListenerDropFIN
	}
	pw.Boot = wsman.ListenerUnavailable
	g := StartForTest(t, Options{Power: pw, QuietModuleLoad: true})
	big := strings.Repeat("0123456789abcdef\r\n", 16<<10) // 288 KiB
	if err := g.Machine.FS().WriteFile(`C:\data\big.txt`, []byte(big)); err != nil {
		t.Fatal(err)
	}

	type job struct {
		line  string
		check func(r result) error
	}
	jobs := []job{
		{"echo tick", func(r result) error { return expectOut(r, 0, "tick\r\n") }},
		{`type C:\data\big.txt`, func(r result) error { return expectOut(r, 0, big) }},
		{winrm.Powershell(`Write-Output a; Start-Sleep -Milliseconds 300; Write-Output b; exit 3`), func(r result) error { return expectOut(r, 3, "a\r\nb\r\n") }},
		{AgentPath + " boot-time", func(r result) error {
			var bt agent.BootTimeResult
			if err := json.Unmarshal([]byte(r.stdout), &bt); err != nil || r.code != 0 || !bt.OK || bt.BootTime.IsZero() {
				return fmt.Errorf("exit %d, document %q (%v)", r.code, r.stdout, err)
			}
			return nil
		}},
	}

	for round := 0; round < 6; round++ {
		boots := g.Machine.BootCount()
		bootTime := g.Machine.BootTime()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok, failed int
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c := client(t, g, "PT1S", 3*time.Second)
				for i := 0; ctx.Err() == nil; i++ {
					j := jobs[(i+w)%len(jobs)]
					r := runCmd(t, c, j.line, 15*time.Second)
					mu.Lock()
					if r.err != nil {
						failed++
					} else {
						ok++
						if err := j.check(r); err != nil {
							t.Errorf("round %d: %.40q succeeded with the wrong result: %v", round, j.line, err)
						}
					}
					mu.Unlock()
					if r.err != nil {
						time.Sleep(20 * time.Millisecond)
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		switch round % 3 {
		case 0: // Windows restarts by itself
			if err := g.Machine.Reboot(); err != nil {
				t.Fatal(err)
			}
		case 1: // hard reset under running commands
			g.Machine.Reset()
		case 2: // restart, then a hard reset somewhere in the sequence
			if err := g.Machine.Reboot(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
			t.Logf("round %d: reset in state %s", round, g.Machine.State())
			g.Machine.Reset()
		}
		// Reset always passes through Off and one more boot.
		want := boots + 1
		if round%3 == 2 {
			want = g.Machine.BootCount() + 1
		}
		if err := g.Machine.WaitBoots(ctxTimeout(t, 15*time.Second), want); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		time.Sleep(300 * time.Millisecond) // commands succeed again
		cancel()
		wg.Wait()
		if !g.Machine.BootTime().After(bootTime) {
			t.Errorf("round %d: boot time unchanged", round)
		}
		if failed == 0 {
			t.Errorf("round %d: no command was cut by the reboot", round)
		}
		t.Logf("round %d: %d commands succeeded, %d failed", round, ok, failed)
	}
	c := client(t, g, "PT5S", 0)
	if r := mustRun(t, c, "echo done"); r.stdout != "done\r\n" {
		t.Errorf("final: %v", r)
	}
	if n := g.Server.ShellCount(); n != 0 {
		t.Errorf("%d shells left open", n)
	}
	if s := g.Machine.State(); s != winsim.StateUp {
		t.Errorf("state %s", s)
	}
}

func expectOut(r result, code int, stdout string) error {
	if r.code != code || r.stdout != stdout {
		return fmt.Errorf("exit %d, %d bytes of stdout (want exit %d, %d bytes)", r.code, len(r.stdout), code, len(stdout))
	}
	return nil
}
