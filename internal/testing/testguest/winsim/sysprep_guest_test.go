package winsim

import (
	"strings"
	"testing"

	"github.com/masterzen/winrm"
)

const oneDrive = "Microsoft.OneDriveSync_21196.921.7.0_neutral__8wekyb3d8bbwe"

func ps(t *testing.T, m *Machine, script string) result {
	t.Helper()
	return run(t, m, winrm.Powershell(script))
}

// A per-user Appx package that is not provisioned makes sysprep fail; once
// removed with Remove-AppxPackage -AllUsers, sysprep generalizes.
func TestAppxBlocksSysprepUntilRemoved(t *testing.T) {
	m := newMachine(t, Options{Users: []string{"vagrant", "Administrator"}})
	if err := m.InstallAppx("Administrator", oneDrive); err != nil {
		t.Fatal(err)
	}
	if err := m.InstallAppx("", "Microsoft.WindowsStore_1.0.0.0_x64__8wekyb3d8bbwe"); err != nil {
		t.Fatal(err)
	}
	if err := m.InstallAppx("vagrant", "Microsoft.WindowsStore_1.0.0.0_x64__8wekyb3d8bbwe"); err != nil {
		t.Fatal(err)
	}
	r := ps(t, m, `$p = @(Get-AppxPackage -AllUsers -Name 'Microsoft.OneDriveSync'); if ($p.Count -gt 0) { Write-Output $p.PackageFullName }`)
	expect(t, r, 0, oneDrive+"\r\n", "")
	// Without -AllUsers only the caller's packages are listed.
	expect(t, run(t, m, winrm.Powershell(`@(Get-AppxPackage -Name 'Microsoft.OneDriveSync').Count`)), 0, "0\r\n", "")

	r = run(t, m, `C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /quit /quiet`)
	if r.code != 1 || m.Generalized() {
		t.Fatalf("sysprep with a per-user Appx package: %v, generalized %t", r, m.Generalized())
	}
	log, _ := m.FS().ReadFile(`C:\Windows\System32\Sysprep\Panther\setuperr.log`)
	if !strings.Contains(string(log), oneDrive+" was installed for a user, but not provisioned for all users") {
		t.Errorf("setuperr.log: %s", log)
	}

	expect(t, ps(t, m, `Remove-AppxPackage -Package '`+oneDrive+`' -AllUsers`), 0, "", "")
	r = ps(t, m, `Remove-AppxPackage -Package '`+oneDrive+`' -AllUsers`)
	if r.code != 1 || !strings.Contains(r.stderr, "0x80073CF1") {
		t.Errorf("removing it again: %v", r)
	}
	for _, p := range m.AppxPackages() {
		if strings.HasPrefix(p.FullName, "Microsoft.OneDriveSync") {
			t.Errorf("still installed: %+v", p)
		}
	}
	expect(t, run(t, m, `C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /quit /quiet`), 0, "", "")
	expect(t, ps(t, m, `(Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State' -Name ImageState).ImageState`),
		0, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n", "")
}

func TestMsiexecInstallsCloudbaseInit(t *testing.T) {
	m := newMachine(t, Options{})
	if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_Stable_x64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	r := ps(t, m, `$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList '/i "C:\Windows\Temp\CloudbaseInitSetup_Stable_x64.msi" /qn /l*v "C:\Windows\Temp\ci.log" LOGGINGSERIALPORTNAME=COM1 RUN_SERVICE_AS_LOCAL_SYSTEM=1' -Wait -PassThru; exit $p.ExitCode`)
	expect(t, r, 0, "", "")
	conf, err := m.FS().ReadFile(CloudbaseInitDir + `\conf\cloudbase-init.conf`)
	if err != nil || !strings.Contains(string(conf), "logging_serial_port_settings=COM1,115200,N,8") {
		t.Errorf("cloudbase-init.conf: %v %q", err, conf)
	}
	if ok, _ := m.FS().exists(CloudbaseInitDir + `\conf\Unattend.xml`); !ok {
		t.Error("no Unattend.xml")
	}
	log, _ := m.FS().ReadFile(`C:\Windows\Temp\ci.log`)
	if !strings.Contains(string(log), "Installation completed successfully") {
		t.Errorf("log: %s", log)
	}
	// A missing package exits 1619.
	r = ps(t, m, `$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList '/i C:\nothing\CloudbaseInitSetup_x64.msi /qn' -Wait -PassThru; exit $p.ExitCode`)
	if r.code != 1619 {
		t.Errorf("missing MSI: %v", r)
	}
}

func TestOptimizeVolumeReTrim(t *testing.T) {
	m := newMachine(t, Options{SystemDisk: &fakeDisk{support: DiscardSupport{Bus: BusVirtioBlk, Granularity: 8192, MaxBytes: 1 << 31}}})
	r := ps(t, m, `Optimize-Volume -DriveLetter C -ReTrim -Verbose`)
	if r.code != 0 || !strings.Contains(r.stdout, "VERBOSE: Invoking retrim on (C:)...") {
		t.Errorf("%v", r)
	}
	r = ps(t, m, `$ErrorActionPreference = 'Stop'; Optimize-Volume -DriveLetter Q -ReTrim`)
	if r.code != 1 || !strings.Contains(r.stderr, "No MSFT_Volume objects found") {
		t.Errorf("unknown drive: %v", r)
	}
}

func TestGetCommand(t *testing.T) {
	m := newMachine(t, Options{})
	expect(t, ps(t, m, `if (Get-Command -Name Get-AppxPackage -ErrorAction SilentlyContinue) { 'yes' } else { 'no' }`), 0, "yes\r\n", "")
	expect(t, ps(t, m, `if (Get-Command -Name Get-Nothing -ErrorAction SilentlyContinue) { 'yes' } else { 'no' }`), 0, "no\r\n", "")
	expect(t, ps(t, m, `(Get-Command -Name dism.exe).Source`), 0, "C:\\Windows\\System32\\dism.exe\r\n", "")
}
