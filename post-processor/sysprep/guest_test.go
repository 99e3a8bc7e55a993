package sysprep

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

const (
	testPassword = "Golden-Pw-42"
	oneDrive     = "Microsoft.OneDriveSync_21196.921.7.0_neutral__8wekyb3d8bbwe"
	gameAssist   = "Microsoft.Edge.GameAssist_1.0.3336.0_x64__8wekyb3d8bbwe"
)

// standinState starts the stand-in Windows (in-process, real WinRM) with
// the golden image's build account and returns the state bag the guest
// steps run with; the DriverMock's WaitVM waits for the guest to power off.
// C: is on a disk as winbake's VM attaches it (winbakeSystemDisk).
func standinState(t *testing.T) (*testguest.Guest, multistep.StateBag, *testio.LockedBuffer) {
	t.Helper()
	return standinStateWith(t, testguest.Options{})
}

// standinStateOn is standinState with C: on disk.
func standinStateOn(t *testing.T, disk winsim.SystemDisk) (*testguest.Guest, multistep.StateBag, *testio.LockedBuffer) {
	t.Helper()
	return standinStateWith(t, testguest.Options{SystemDisk: disk})
}

// standinStateWith is standinState with more stand-in options (the
// account and password are the golden image's; C: is on
// winbakeSystemDisk unless opts name a disk).
func standinStateWith(t *testing.T, opts testguest.Options) (*testguest.Guest, multistep.StateBag, *testio.LockedBuffer) {
	t.Helper()
	opts.User, opts.Password, opts.QuietModuleLoad = "Administrator", testPassword, true
	if opts.SystemDisk == nil {
		opts.SystemDisk = winbakeSystemDisk()
	}
	g := testguest.StartForTest(t, opts)
	host, port := g.HostPort()
	comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: host, Port: port, Username: "Administrator", Password: testPassword, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	out := &testio.LockedBuffer{}
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: out, ErrorWriter: out})
	state.Put("communicator", comm)
	state.Put(qemuvm.StateDriver, &qemuvm.DriverMock{WaitVMFunc: func(ctx context.Context) error {
		return g.Machine.WaitState(ctx, winsim.StateOff)
	}})
	return g, state, out
}

func runSteps(t *testing.T, state multistep.StateBag, steps ...multistep.Step) {
	t.Helper()
	for _, s := range steps {
		if action := s.Run(context.Background(), state); action != multistep.ActionContinue {
			t.Fatalf("%T halted: %v", s, state.Get("error"))
		}
	}
}

// The whole guest-side sequence on the stand-in: the agent is uploaded,
// nothing is pending, the blocking Appx package is removed and named,
// cloudbase-init is installed and configured, C: is trimmed, and sysprep
// with cloudbase-init's answer file generalizes Windows and powers it off.
func TestGuestSequenceGeneralizesStandin(t *testing.T) {
	g, state, out := standinState(t)
	m := g.Machine
	if err := m.FS().Remove(testguest.AgentPath); err != nil {
		t.Fatal(err)
	}
	if err := m.InstallAppx("Administrator", oneDrive); err != nil {
		t.Fatal(err)
	}
	msi := filepath.Join(t.TempDir(), "CloudbaseInitSetup_Stable_x64.msi")
	if err := os.WriteFile(msi, []byte("stand-in MSI"), 0o644); err != nil {
		t.Fatal(err)
	}
	ci := &CloudbaseInitConfig{
		MSI:              msi,
		MetadataServices: []string{"cloudbaseinit.metadata.services.configdrive.ConfigDriveService"},
		Options:          map[string]string{"config_drive_locations": "cdrom"},
	}
	if errs := ci.prepare(); len(errs) > 0 {
		t.Fatal(errs)
	}
	runSteps(t, state,
		&stepEnsureAgent{}, &stepCheckPending{}, &stepRemoveAppx{Names: DefaultRemoveAppxPackages},
		&stepFetchCloudbaseInit{Config: ci}, &stepInstallCloudbaseInit{Config: ci}, &stepTrim{}, &stepSysprep{Timeout: time.Minute})

	if !m.Generalized() {
		t.Error("Windows was not generalized")
	}
	if st, _, _ := m.RegistryFor("Administrator").String(`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`, "ImageState"); st != ImageStateGeneralized {
		t.Errorf("ImageState %q", st)
	}
	if got := state.Get(stateRemovedAppx).([]string); len(got) != 1 || got[0] != oneDrive {
		t.Errorf("removed %q", got)
	}
	if len(m.AppxPackages()) != 0 {
		t.Errorf("Appx packages left: %+v", m.AppxPackages())
	}
	log := out.String()
	for _, want := range []string{"Uploading winbake-agent", "Nothing is pending", "Removed the Appx package " + oneDrive,
		"Installing cloudbase-init", "VERBOSE: Invoking retrim on (C:)", `/quit /quiet /unattend:"` + CloudbaseInitUnattend + `"`,
		"Windows reports IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", "powered the VM off"} {
		if !strings.Contains(log, want) {
			t.Errorf("UI output lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, testPassword) {
		t.Error("the password is in the UI output")
	}
	for _, name := range []string{"cloudbase-init.conf", "cloudbase-init-unattend.conf"} {
		conf, err := m.FS().ReadFile(CloudbaseInitDir + `\conf\` + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"logging_serial_port_settings=COM1,115200,N,8\r\n", "username=Admin\r\n", "groups=Administrators\r\n",
			"metadata_services=cloudbaseinit.metadata.services.configdrive.ConfigDriveService\r\n", "first_logon_behaviour=no\r\n",
			"config_drive_locations=cdrom\r\n"} {
			if !strings.Contains(string(conf), want) {
				t.Errorf("%s lacks %q:\n%s", name, want, conf)
			}
		}
		// The deprecated config drive switches, which only add to the
		// types and locations, are off.
		for _, off := range []string{"config_drive_cdrom=false\r\n", "config_drive_vfat=false\r\n", "config_drive_raw_hhd=false\r\n"} {
			if !strings.Contains(string(conf), off) {
				t.Errorf("%s lacks %q:\n%s", name, off, conf)
			}
		}
	}
	for _, gone := range []string{testguest.AgentPath, `C:\Windows\Temp\CloudbaseInitSetup_Stable_x64.msi`} {
		if _, err := m.FS().Stat(gone); err == nil {
			t.Errorf("%s left in the image", gone)
		}
	}
}

// Without cloudbase-init, sysprep runs with the generated answer file, and
// an agent the image already had stays.
func TestGuestSequenceGeneratedUnattend(t *testing.T) {
	g, state, out := standinState(t)
	runSteps(t, state, &stepEnsureAgent{}, &stepCheckPending{}, &stepRemoveAppx{Names: DefaultRemoveAppxPackages},
		&stepInstallCloudbaseInit{}, &stepTrim{Skip: true}, &stepSysprep{Timeout: time.Minute})
	if !g.Machine.Generalized() {
		t.Error("Windows was not generalized")
	}
	ans, err := g.Machine.FS().ReadFile(generatedUnattend)
	if err != nil || !bytes.Contains(ans, []byte("<PersistAllDeviceInstalls>true</PersistAllDeviceInstalls>\r\n")) {
		t.Errorf("answer file %s: %v\n%s", generatedUnattend, err, ans)
	}
	if _, err := g.Machine.FS().Stat(testguest.AgentPath); err != nil {
		t.Errorf("the image's own agent was removed: %v", err)
	}
	log := out.String()
	if !strings.Contains(log, "No per-user Appx package that blocks sysprep is installed") || strings.Contains(log, "Trimming") {
		t.Errorf("UI output:\n%s", log)
	}
}

// A reboot pending from servicing stops the run before anything changes.
func TestRefusesWhenPending(t *testing.T) {
	g, state, _ := standinState(t)
	if err := g.Machine.RegistryFor("Administrator").CreateKey(winsim.RebootPendingKey); err != nil {
		t.Fatal(err)
	}
	if action := (&stepCheckPending{}).Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("a pending reboot did not stop the run")
	}
	err, _ := state.Get("error").(error)
	if err == nil || !strings.Contains(err.Error(), "servicing pending a reboot (cbs_reboot_pending)") {
		t.Errorf("error %v", err)
	}
}

// An image already generalized is refused before sysprep starts.
func TestSysprepRefusesGeneralizedImage(t *testing.T) {
	g, state, _ := standinState(t)
	if err := g.Machine.RegistryFor("Administrator").SetString(`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`, "ImageState", ImageStateGeneralized); err != nil {
		t.Fatal(err)
	}
	if action := (&stepSysprep{Timeout: time.Minute}).Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("not refused")
	}
	if err, _ := state.Get("error").(error); err == nil || !strings.Contains(err.Error(), "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE") {
		t.Errorf("error %v", err)
	}
}

// What this post-processor writes, run by the stand-in's cloudbase-init
// (a model of its code): with the default first_logon_behaviour ("no")
// the metadata's admin_pass stays the account's valid password, which
// WinRM and winbake-verify log on with; cloudbase-init's own default,
// clear_text_injected_only, makes the account change it at the next
// logon, which Windows refuses over the network.
func TestWrittenCloudbaseInitConfKeepsTheInjectedPasswordValid(t *testing.T) {
	const adminPass = "Inst-Admin-Pw-7"
	for _, c := range []struct {
		firstLogon string
		options    map[string]string
		mustChange bool
	}{{"", nil, false}, {"clear_text_injected_only", nil, true}, {"always", nil, true},
		{"", map[string]string{"config_drive_locations": "cdrom"}, false}} {
		t.Run(fmt.Sprintf("first_logon_behaviour=%s,options=%v", c.firstLogon, c.options), func(t *testing.T) {
			msi := filepath.Join(t.TempDir(), "CloudbaseInitSetup_Stable_x64.msi")
			if err := os.WriteFile(msi, []byte("stand-in MSI"), 0o644); err != nil {
				t.Fatal(err)
			}
			ci := &CloudbaseInitConfig{MSI: msi, FirstLogonBehaviour: c.firstLogon, Options: c.options,
				MetadataServices: []string{"cloudbaseinit.metadata.services.configdrive.ConfigDriveService"},
				Plugins:          []string{"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin", "cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin"}}
			if errs := ci.prepare(); len(errs) > 0 {
				t.Fatal(errs)
			}
			m, err := winsim.New(winsim.Options{StateDir: t.TempDir(), Users: []string{"Administrator"}, Failf: t.Errorf})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_Stable_x64.msi`, []byte("MSI")); err != nil {
				t.Fatal(err)
			}
			if code, err := m.ConsoleSystem().Processes().Run(context.Background(), "msiexec.exe", []string{"/i", `C:\Windows\Temp\CloudbaseInitSetup_Stable_x64.msi`, "/qn", "LOGGINGSERIALPORTNAME=COM1"}, nil, nil); err != nil || code != 0 {
				t.Fatalf("msiexec: %d %v", code, err)
			}
			conf, err := CloudbaseInitConf(ci, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.FS().WriteFile(CloudbaseInitDir+`\conf\cloudbase-init.conf`, []byte(conf)); err != nil {
				t.Fatal(err)
			}
			drive := t.TempDir()
			latest := filepath.Join(drive, "openstack", "latest")
			if err := os.MkdirAll(latest, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), []byte(`{"uuid":"2d5e","hostname":"inst","admin_pass":"`+adminPass+`"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			var console bytes.Buffer
			res, err := m.RunCloudbaseInit(context.Background(), winsim.CloudbaseInitRun{Console: &console, CDs: []winsim.Volume{{Label: "config-2", Dir: drive}}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passwords["Admin"] != adminPass || m.PasswordMustChange("Admin") != c.mustChange {
				t.Errorf("admin_pass set %v, must change %v (want %v)\n%s", res.Passwords["Admin"] == adminPass, m.PasswordMustChange("Admin"), c.mustChange, console.String())
			}
			// Without a config drive the search shows: every location by
			// default, the locations option limits it.
			console.Reset()
			if _, err := m.RunCloudbaseInit(context.Background(), winsim.CloudbaseInitRun{Console: &console}); err != nil {
				t.Fatal(err)
			}
			searchedDisks := strings.Contains(console.String(), "Looking for Config Drive iso in hdd") && strings.Contains(console.String(), "Looking for Config Drive vfat in partition")
			if searchedDisks != (c.options == nil) || !strings.Contains(console.String(), "Looking for Config Drive iso in cdrom") {
				t.Errorf("disks searched: %v\n%s", searchedDisks, console.String())
			}
			if len(m.Unsupported()) > 0 {
				t.Errorf("the stand-in does not understand the written configuration: %q", m.Unsupported())
			}
		})
	}
}
