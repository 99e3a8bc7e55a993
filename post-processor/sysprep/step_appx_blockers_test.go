package sysprep

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// Two runs of sysprep in one setupact.log, as Windows Server 2022 logs a
// run the Appx provider stops (a posted log, July 2025); the second run is
// the one read.
const capturedSetupAct = "2025-07-22 21:50:02, Info                  SYSPRP ========================================================\r\n" +
	"2025-07-22 21:50:02, Info                  SYSPRP ===          Beginning of a new sysprep run          ===\r\n" +
	"2025-07-22 21:50:02, Info                  SYSPRP ========================================================\r\n" +
	"2025-07-22 21:50:03, Error                 SYSPRP Package Microsoft.OneDriveSync_21220.1024.5.0_neutral__8wekyb3d8bbwe was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.\r\n" +
	"2025-07-22 21:50:03, Info       [0x0f0052] SYSPRP Shutting down SysPrep log\r\n" +
	"2025-07-22 21:55:35, Info                  SYSPRP ========================================================\r\n" +
	"2025-07-22 21:55:35, Info                  SYSPRP ===          Beginning of a new sysprep run          ===\r\n" +
	"2025-07-22 21:55:35, Info                  SYSPRP ========================================================\r\n" +
	"2025-07-22 21:55:35, Info       [0x0f004d] SYSPRP The time is now 2025-07-22 21:55:35\r\n" +
	"2025-07-22 21:55:35, Info                  SYSPRP ActionPlatform::LaunchModule: Executing method 'SysprepGeneralizeValidate' from C:\\Windows\\System32\\AppxSysprep.dll\r\n" +
	"2025-07-22 21:55:35, Info                  SYSPRP Entering SysprepGeneralizeValidate (Appx) - validating whether all apps are also provisioned.\r\n" +
	"2025-07-22 21:55:35, Error                 SYSPRP Package Microsoft.Edge.GameAssist_1.0.3423.0_x64__8wekyb3d8bbwe was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.\r\n" +
	"2025-07-22 21:55:35, Error                 SYSPRP Failed to remove apps for the current user: 0x80073cf2.\r\n" +
	"2025-07-22 21:55:35, Error                 SYSPRP Exit code of RemoveAllApps thread was 0x3cf2.\r\n" +
	"2025-07-22 21:55:35, Error                 SYSPRP ActionPlatform::LaunchModule: Failure occurred while executing 'SysprepGeneralizeValidate' from C:\\Windows\\System32\\AppxSysprep.dll; dwRet = 0x3cf2\r\n" +
	"2025-07-22 21:55:35, Error                 SYSPRP SysprepSession::Validate: Error in validating actions from C:\\Windows\\System32\\Sysprep\\ActionFiles\\Generalize.xml; dwRet = 0x3cf2\r\n" +
	"2025-07-22 21:55:35, Error                 SYSPRP RunPlatformActions:Failed while validating Sysprep session actions; dwRet = 0x3cf2\r\n" +
	"2025-07-22 21:55:35, Error      [0x0f0070] SYSPRP RunDlls:An error occurred while running registry sysprep DLLs, halting sysprep execution. dwRet = 0x3cf2\r\n" +
	"2025-07-22 21:55:35, Error      [0x0f00d8] SYSPRP WinMain:Hit failure while pre-validate sysprep generalize internal providers; hr = 0x80073cf2\r\n" +
	"2025-07-22 21:55:35, Info       [0x0f0052] SYSPRP Shutting down SysPrep log\r\n"

func TestLastSysprepRun(t *testing.T) {
	run := lastSysprepRun(capturedSetupAct)
	if len(run.Blockers) != 1 || run.Blockers[0] != "Microsoft.Edge.GameAssist_1.0.3423.0_x64__8wekyb3d8bbwe" || !run.Failed {
		t.Errorf("blockers %q failed %t", run.Blockers, run.Failed)
	}
	if !strings.HasPrefix(run.Text, "2025-07-22 21:55:35, Info                  SYSPRP =====") || strings.Contains(run.Text, "OneDrive") {
		t.Errorf("run text starts %.80q", run.Text)
	}
	excerpt := strings.Split(run.Excerpt, "\n")
	if len(excerpt) != 8 || !strings.Contains(excerpt[0], "Package Microsoft.Edge.GameAssist") || !strings.Contains(excerpt[7], "Hit failure while pre-validate") {
		t.Errorf("excerpt:\n%s", run.Excerpt)
	}

	ok := lastSysprepRun("2026-01-01 10:00:00, Info                  SYSPRP ===          Beginning of a new sysprep run          ===\r\n" +
		"2026-01-01 10:00:09, Info       [0x0f0052] SYSPRP Shutting down SysPrep log\r\n")
	if ok.Failed || len(ok.Blockers) != 0 || !strings.Contains(ok.Excerpt, "Shutting down") {
		t.Errorf("a run that went through: %+v", ok)
	}
	if empty := lastSysprepRun(""); empty.Text != "" || empty.Failed {
		t.Errorf("no log: %+v", empty)
	}
}

// hookedComm runs before(n) before the n-th sysprep.exe command it starts.
type hookedComm struct {
	packersdk.Communicator
	mu     sync.Mutex
	runs   int
	before func(n int, comm packersdk.Communicator)
}

func (h *hookedComm) Start(ctx context.Context, cmd *packersdk.RemoteCmd) error {
	if strings.Contains(cmd.Command, `\Sysprep\sysprep.exe`) {
		h.mu.Lock()
		h.runs++
		n := h.runs
		h.mu.Unlock()
		h.before(n, h.Communicator)
	}
	return h.Communicator.Start(ctx, cmd)
}

// addAppx installs a package for Administrator as a provisioner would:
// the package file uploaded, Add-AppxPackage run over WinRM.
func addAppx(t *testing.T, state multistep.StateBag, m *winsim.Machine, name string) {
	t.Helper()
	path := `C:\Windows\Temp\` + name + ".msix"
	if err := m.FS().WriteFile(path, winsim.AppxPackageFile(name, "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US", "1.0.0.0", "x64")); err != nil {
		t.Fatal(err)
	}
	r, err := runGuest(context.Background(), communicatorOf(state), powershellCommand("Add-AppxPackage -Path '"+path+"'"))
	if err != nil || r.ExitStatus != 0 {
		t.Fatalf("Add-AppxPackage: %v %+v", err, r)
	}
}

const (
	winAppRuntime = "Microsoft.WindowsAppRuntime.1.6_1.0.0.0_x64__8wekyb3d8bbwe"
	wsl           = "MicrosoftCorporationII.WindowsSubsystemForLinux_1.0.0.0_x64__8wekyb3d8bbwe"
)

// Packages remove_appx_packages does not name block sysprep; winbake
// removes exactly the ones sysprep names in setupact.log, one per run, and
// the next run generalizes. The manifest's list has them all.
func TestSysprepRemovesThePackagesSysprepNames(t *testing.T) {
	g, state, out := standinState(t)
	m := g.Machine
	if err := m.InstallAppx("Administrator", oneDrive); err != nil {
		t.Fatal(err)
	}
	addAppx(t, state, m, "Microsoft.WindowsAppRuntime.1.6")
	addAppx(t, state, m, "MicrosoftCorporationII.WindowsSubsystemForLinux")
	const store = "Microsoft.WindowsStore_22401.1400.6.0_x64__8wekyb3d8bbwe"
	if err := m.InstallAppx("", store); err != nil {
		t.Fatal(err)
	}
	runSteps(t, state, &stepRemoveAppx{Names: DefaultRemoveAppxPackages}, &stepSysprep{Timeout: time.Minute, Poll: 50 * time.Millisecond})

	if !m.Generalized() {
		t.Fatal("not generalized")
	}
	if got := strings.Join(state.Get(stateRemovedAppx).([]string), " "); got != oneDrive+" "+winAppRuntime+" "+wsl {
		t.Errorf("removed %s", got)
	}
	if pkgs := m.AppxPackages(); len(pkgs) != 1 || pkgs[0].FullName != store {
		t.Errorf("packages left %+v, want the provisioned Store only", pkgs)
	}
	log := out.String()
	for _, want := range []string{
		"Removed the Appx package " + oneDrive,
		"Sysprep named the Appx package " + winAppRuntime + " (installed for a user, not provisioned for all users): removed it for all users\n",
		"Sysprep named the Appx package " + wsl + " (installed for a user, not provisioned for all users): removed it for all users\n",
		"Windows reports IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("UI output lacks %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "Running C:\\Windows\\System32\\Sysprep\\sysprep.exe"); n != 3 {
		t.Errorf("sysprep ran %d times, want 3", n)
	}
}

// A second failure that names no new package ends the run with the
// failed run's lines: something else blocks sysprep (a reboot pending), or
// the package sysprep named comes back.
func TestSysprepFailsAgainWithTheLogExcerpt(t *testing.T) {
	for _, c := range []struct {
		name   string
		before func(m *winsim.Machine, comm packersdk.Communicator)
		want   []string
	}{
		{"reboot pending", func(m *winsim.Machine, comm packersdk.Communicator) {
			// An update installed between the runs, waiting for a reboot.
			if err := m.FS().WriteFile(`C:\updates\kb7-reboot.cab`, []byte("package")); err != nil {
				t.Error(err)
			}
			r, err := runGuest(context.Background(), comm, `C:\Windows\System32\dism.exe /Online /Add-Package /PackagePath:C:\updates\kb7-reboot.cab /NoRestart /Quiet /English`)
			if err != nil || r.ExitStatus != 3010 {
				t.Errorf("dism: %v %+v", err, r)
			}
		}, []string{"sysprep ended with exit code 1 and Windows is not generalized (image state IMAGE_STATE_COMPLETE); " + sysprepActLog + ":\n",
			"Sysprep_Clean_Validate_Opk: There are one or more Windows updates that require a reboot"}},
		{"named again", func(m *winsim.Machine, _ packersdk.Communicator) {
			if err := m.InstallAppx("Administrator", winAppRuntime); err != nil {
				t.Error(err)
			}
		}, []string{"(it names " + winAppRuntime + " again after winbake removed it)",
			"Error                 SYSPRP Package " + winAppRuntime + " was installed for a user, but not provisioned for all users.",
			"Error      [0x0f00d8] SYSPRP WinMain:Hit failure while pre-validate sysprep generalize internal providers; hr = 0x80073cf2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, state, _ := standinStateWith(t, testguest.Options{Packages: []winsim.Package{{FileName: "kb7-reboot.cab", Result: winsim.InstallsRebootRequired}}})
			m := g.Machine
			addAppx(t, state, m, "Microsoft.WindowsAppRuntime.1.6")
			state.Put("communicator", &hookedComm{Communicator: communicatorOf(state), before: func(n int, comm packersdk.Communicator) {
				if n == 2 {
					c.before(m, comm)
				}
			}})
			step := &stepSysprep{Timeout: time.Minute, Poll: 50 * time.Millisecond}
			if step.Run(context.Background(), state) != multistep.ActionHalt {
				t.Fatal("the second failure was not reported")
			}
			err := state.Get("error").(error)
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), "Info ") || m.Generalized() {
				t.Errorf("the excerpt quotes more than the Error lines, or Windows was generalized:\n%v", err)
			}
			if got := state.Get(stateRemovedAppx).([]string); len(got) != 1 || got[0] != winAppRuntime {
				t.Errorf("removed %q", got)
			}
		})
	}
}

// A failed run that left the image state other than IMAGE_STATE_COMPLETE
// is not retried, even when it names a package.
func TestSysprepNotRetriedOnUndeployableImage(t *testing.T) {
	g, state, _ := standinState(t)
	m := g.Machine
	addAppx(t, state, m, "Microsoft.WindowsAppRuntime.1.6")
	state.Put("communicator", &hookedComm{Communicator: communicatorOf(state), before: func(n int, _ packersdk.Communicator) {
		// As a run that failed while generalizing leaves it.
		if err := m.RegistryFor("Administrator").SetString(`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`, "ImageState", "IMAGE_STATE_UNDEPLOYABLE"); err != nil {
			t.Error(err)
		}
	}})
	if (&stepSysprep{Timeout: time.Minute, Poll: 50 * time.Millisecond}).Run(context.Background(), state) != multistep.ActionHalt {
		t.Fatal("not refused")
	}
	err := state.Get("error").(error)
	if !strings.Contains(err.Error(), "(image state IMAGE_STATE_UNDEPLOYABLE) (sysprep failed past its validation") || !strings.Contains(err.Error(), winAppRuntime) {
		t.Errorf("error %v", err)
	}
	if got, _ := state.Get(stateRemovedAppx).([]string); len(got) != 0 {
		t.Errorf("removed %q", got)
	}
}

// A package sysprep names that is also provisioned loses its provisioned
// copy too, and the build says so.
func TestRemoveAppxBlockerWithProvisionedCopy(t *testing.T) {
	g, state, out := standinState(t)
	m := g.Machine
	for _, user := range []string{"Administrator", ""} {
		if err := m.InstallAppx(user, winAppRuntime); err != nil {
			t.Fatal(err)
		}
	}
	ui := state.Get("ui").(packersdk.Ui)
	if err := removeAppxBlocker(context.Background(), ui, communicatorOf(state), winAppRuntime); err != nil {
		t.Fatal(err)
	}
	if pkgs := m.AppxPackages(); len(pkgs) != 0 {
		t.Errorf("left %+v", pkgs)
	}
	if !strings.Contains(out.String(), "removed it for all users and its provisioned copy") {
		t.Errorf("UI output:\n%s", out.String())
	}
	// A package nobody has is an error of Remove-AppxPackage's.
	err := removeAppxBlocker(context.Background(), ui, communicatorOf(state), winAppRuntime)
	if err == nil || !strings.Contains(err.Error(), "0x80073CF1") {
		t.Errorf("error %v", err)
	}
}
