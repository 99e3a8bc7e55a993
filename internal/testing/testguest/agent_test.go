package testguest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// winbake-agent, run over WinRM in the stand-in as the plugin runs it:
// AgentPath with a verb, one JSON document on stdout.

const (
	ssuCab    = "ssu-20348.2700-x64.cab"
	lcuCab    = "windows10.0-kb5044281-x64.cab"
	plainCab  = "windows10.0-kb5000010-x64.cab"
	notAppCab = "windows10.0-kb5000011-x64.cab"
)

func servicingGuest(t *testing.T) *Guest {
	t.Helper()
	pw := fastPower()
	g := StartForTest(t, Options{
		Power: pw,
		Packages: []winsim.Package{
			{FileName: ssuCab, Result: winsim.Installs},
			{FileName: lcuCab, Result: winsim.InstallsRebootRequired, RequiresSSU: ssuCab, UBR: 2762},
			{FileName: plainCab, Result: winsim.Installs},
			{FileName: notAppCab, Result: winsim.NotApplicable},
		},
	})
	for _, f := range []string{ssuCab, lcuCab, plainCab, notAppCab} {
		if err := g.Machine.FS().WriteFile(`C:\updates\`+f, []byte("MSCF simulated "+f)); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// runAgent runs the agent with args over WinRM and decodes its document.
func runAgent(t *testing.T, c *winrm.Client, doc any, args ...string) result {
	t.Helper()
	r := runCmd(t, c, AgentPath+" "+strings.Join(args, " "), 30*time.Second)
	if r.err != nil {
		t.Fatalf("agent %v: %v", args, r)
	}
	decodeAgent(t, r.stdout, doc)
	return r
}

func install(t *testing.T, c *winrm.Client, cab string) (agent.InstallResult, result) {
	t.Helper()
	var res agent.InstallResult
	r := runAgent(t, c, &res, "install", `C:\updates\`+cab)
	if res.Verb != "install" || res.Protocol != agent.Protocol || res.Package != `C:\updates\`+cab || res.Kind != "cab" {
		t.Errorf("install %s: header %+v", cab, res)
	}
	return res, r
}

func TestAgentOverWinRM(t *testing.T) {
	t.Parallel()
	g := servicingGuest(t)
	c := client(t, g, "PT5S", 0)

	var ver agent.VersionResult
	if r := runAgent(t, c, &ver, "version"); r.code != 0 || !ver.OK || ver.OS == nil || ver.OS.Build != "20348.2700" || ver.AgentVersion != agent.Version() {
		t.Errorf("version: %v %+v", r, ver)
	}

	var bt agent.BootTimeResult
	runAgent(t, c, &bt, "boot-time")
	boot := g.Machine.BootTime().UTC()
	if !bt.OK || !bt.BootTime.Equal(boot) {
		t.Errorf("boot-time %v, machine booted at %v", bt.BootTime, boot)
	}
	var pr agent.PendingRebootResult
	if runAgent(t, c, &pr, "pending-reboot"); !pr.OK || pr.Pending || len(pr.Reasons) != 0 {
		t.Errorf("pending-reboot on a fresh guest: %+v", pr)
	}

	// 0: installed.
	res, r := install(t, c, plainCab)
	if r.code != int(agent.ExitOK) || !res.OK || res.Result != agent.Installed || res.ExitCode != 0 || res.RebootRequired {
		t.Errorf("install %s: %v\n%+v", plainCab, r, res)
	}
	if len(res.Steps) != 1 || !strings.EqualFold(res.Steps[0].Program, `C:\Windows\System32\dism.exe`) {
		t.Errorf("install %s: steps %+v", plainCab, res.Steps)
	}
	// Not applicable: the DISM code as an unsigned 32-bit value, an outcome
	// that is OK.
	res, r = install(t, c, notAppCab)
	if r.code != int(agent.ExitOK) || !res.OK || res.Result != agent.NotApplicable || res.ExitCode != 2148468766 || res.ExitCodeHex != "0x800F081E" {
		t.Errorf("install %s: %v\n%+v", notAppCab, r, res)
	}
	// The LCU needs the servicing stack first.
	res, r = install(t, c, lcuCab)
	if r.code != int(agent.ExitFailed) || res.OK || res.Result != agent.NeedsServicingStack || res.ExitCode != 2148468771 {
		t.Errorf("install %s before the SSU: %v\n%+v", lcuCab, r, res)
	}
	if res, _ := install(t, c, ssuCab); !res.OK || res.Result != agent.Installed {
		t.Errorf("install %s: %+v", ssuCab, res)
	}
	// Now it installs, pending a reboot: 3010 and the pending keys.
	res, r = install(t, c, lcuCab)
	if r.code != int(agent.ExitOK) || !res.OK || res.Result != agent.InstalledRebootRequired || res.ExitCode != 3010 || !res.RebootRequired {
		t.Errorf("install %s: %v\n%+v", lcuCab, r, res)
	}
	wantReasons := []string{agent.ReasonCBSRebootPending, agent.ReasonCBSPackagesPending, agent.ReasonWURebootRequired}
	if res.PendingReboot == nil || !res.PendingReboot.Pending || !slices.Equal(res.PendingReboot.Reasons, wantReasons) {
		t.Errorf("install %s: pending reboot %+v, want reasons %v", lcuCab, res.PendingReboot, wantReasons)
	}
	if !strings.Contains(r.stderr, "winbake-agent: install: ") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	pr = agent.PendingRebootResult{}
	if runAgent(t, c, &pr, "pending-reboot"); !pr.Pending || !slices.Equal(pr.Reasons, wantReasons) {
		t.Errorf("pending-reboot after 3010: %+v", pr)
	}
	if s := g.Machine.PackageState(lcuCab); s != "Install Pending" {
		t.Errorf("package state %q", s)
	}

	// restart: answered before WinRM stops, with the boot time to compare.
	var rr agent.RestartResult
	if r := runAgent(t, c, &rr, "restart", "--reason", `"winbake: updates"`); r.code != 0 || !rr.OK || !rr.BootTime.Equal(boot) || rr.Reason != "winbake: updates" {
		t.Errorf("restart: %v\n%+v", r, rr)
	}
	// The plugin's wait: boot-time until it changes, through the errors
	// of a machine that is going down, off and booting.
	var newBoot time.Time
	var errs int
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("boot time never changed (%d errors)", errs)
		}
		r := runCmd(t, c, AgentPath+" boot-time", 10*time.Second)
		if r.err != nil {
			errs++
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var b agent.BootTimeResult
		decodeAgent(t, r.stdout, &b)
		if !b.BootTime.Equal(boot) {
			newBoot = b.BootTime
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !newBoot.After(boot) || errs == 0 {
		t.Errorf("new boot time %v (old %v) after %d errors", newBoot, boot, errs)
	}
	pr = agent.PendingRebootResult{}
	if runAgent(t, c, &pr, "pending-reboot"); !pr.OK || pr.Pending || len(pr.Reasons) != 0 {
		t.Errorf("pending-reboot after the reboot: %+v", pr)
	}
	if s := g.Machine.PackageState(lcuCab); s != "Installed" {
		t.Errorf("package state after the reboot %q", s)
	}
	ver = agent.VersionResult{}
	if runAgent(t, c, &ver, "version"); ver.OS == nil || ver.OS.Build != "20348.2762" {
		t.Errorf("version after the LCU: %+v", ver.OS)
	}
	// Installing it again: DISM says 0 for an installed package.
	if res, _ := install(t, c, lcuCab); res.Result != agent.Installed || res.ExitCode != 0 {
		t.Errorf("install %s again: %+v", lcuCab, res)
	}
}

// The agent from PowerShell, as a provisioner script runs it, and its
// usage errors: exit codes and documents pass PowerShell unchanged.
func TestAgentFromPowerShell(t *testing.T) {
	t.Parallel()
	g := StartForTest(t, Options{QuietModuleLoad: true})
	c := client(t, g, "PT5S", 0)
	r := runCmd(t, c, winrm.Powershell(`& '`+AgentPath+`' boot-time; exit $LASTEXITCODE`), 20*time.Second)
	var bt agent.BootTimeResult
	decodeAgent(t, r.stdout, &bt)
	if r.err != nil || r.code != 0 || !bt.OK || !bt.BootTime.Equal(g.Machine.BootTime().UTC()) {
		t.Errorf("boot-time from PowerShell: %v", r)
	}
	r = runCmd(t, c, AgentPath+" install", 20*time.Second)
	var u agent.UsageResult
	decodeAgent(t, r.stdout, &u)
	if r.code != int(agent.ExitUsage) || !u.UsageError || u.OK {
		t.Errorf("usage error: %v", r)
	}
}
