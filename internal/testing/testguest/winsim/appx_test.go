package winsim

import (
	"regexp"
	"strings"
	"testing"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

const microsoftPublisher = "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US"

// The publisher IDs of Microsoft's own package full names.
func TestPublisherID(t *testing.T) {
	for publisher, want := range map[string]string{
		microsoftPublisher: "8wekyb3d8bbwe",
		"CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US": "cw5n1h2txyewy",
	} {
		if got := PublisherID(publisher); got != want {
			t.Errorf("PublisherID(%q) = %s, want %s", publisher, got, want)
		}
	}
}

// sysprepRunLines are the lines of setupact.log's last run without their
// date and time.
func sysprepRunLines(t *testing.T, m *Machine, file string) []string {
	t.Helper()
	b, err := m.FS().ReadFile(sysprepPanther + file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "Beginning of a new sysprep run") && i > 0 {
			lines = lines[i-1:]
			break
		}
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, `)
	for i, l := range lines {
		if !stamp.MatchString(l) {
			t.Fatalf("%s line without a time stamp: %q", file, l)
		}
		lines[i] = stamp.ReplaceAllString(l, "")
	}
	return lines
}

// A package Add-AppxPackage installed for the user blocks sysprep
// /generalize with the Appx provider's lines (as a Server 2022 setupact.log
// shows them), leaves the image state as it was, and sysprep generalizes
// once the package is removed for all users.
func TestAddAppxPackageBlocksSysprepGeneralize(t *testing.T) {
	m := newMachine(t, Options{Users: []string{"Administrator"}})
	if err := m.FS().WriteFile(`C:\Windows\Temp\WinAppRuntime.msix`, AppxPackageFile("Microsoft.WindowsAppRuntime.1.6", microsoftPublisher, "6000.401.2352.0", "x64")); err != nil {
		t.Fatal(err)
	}
	const full = "Microsoft.WindowsAppRuntime.1.6_6000.401.2352.0_x64__8wekyb3d8bbwe"
	asAdmin := func(script string) result {
		r, err := start(t, m, wsman.CommandRequest{User: "Administrator", Command: winrm.Powershell(script)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	expect(t, asAdmin(`Add-AppxPackage -Path C:\Windows\Temp\WinAppRuntime.msix`), 0, "", "")
	expect(t, asAdmin(`(Get-AppxPackage -AllUsers -Name 'Microsoft.WindowsAppRuntime.1.6').PackageFullName`), 0, full+"\r\n", "")

	// Without /generalize the Appx provider does not run.
	r := asAdmin(`$p = Start-Process -FilePath 'C:\Windows\System32\Sysprep\sysprep.exe' -ArgumentList '/generalize /oobe /quit /quiet' -Wait -PassThru; exit $p.ExitCode`)
	if r.code != 1 || m.Generalized() {
		t.Fatalf("sysprep with a per-user package: %v, generalized %t", r, m.Generalized())
	}
	want := []string{
		"Info                  SYSPRP ========================================================",
		"Info                  SYSPRP ===          Beginning of a new sysprep run          ===",
		"Info                  SYSPRP ========================================================",
		"Info       [0x0f00d7] SYSPRP WinMain:Pre-validing 'generalize' internal providers.",
		`Info                  SYSPRP SysprepSession::Validate: Beginning action execution from C:\Windows\System32\Sysprep\ActionFiles\Generalize.xml`,
		`Info                  SYSPRP ActionPlatform::LaunchModule: Executing method 'SysprepGeneralizeValidate' from C:\Windows\System32\AppxSysprep.dll`,
		"Info                  SYSPRP Entering SysprepGeneralizeValidate (Appx) - validating whether all apps are also provisioned.",
		"Error                 SYSPRP Package " + full + " was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.",
		"Error                 SYSPRP Failed to remove apps for the current user: 0x80073cf2.",
		"Error                 SYSPRP Exit code of RemoveAllApps thread was 0x3cf2.",
		`Error                 SYSPRP ActionPlatform::LaunchModule: Failure occurred while executing 'SysprepGeneralizeValidate' from C:\Windows\System32\AppxSysprep.dll; dwRet = 0x3cf2`,
		`Error                 SYSPRP SysprepSession::Validate: Error in validating actions from C:\Windows\System32\Sysprep\ActionFiles\Generalize.xml; dwRet = 0x3cf2`,
		"Error                 SYSPRP RunPlatformActions:Failed while validating Sysprep session actions; dwRet = 0x3cf2",
		"Error      [0x0f0070] SYSPRP RunDlls:An error occurred while running registry sysprep DLLs, halting sysprep execution. dwRet = 0x3cf2",
		"Error      [0x0f00d8] SYSPRP WinMain:Hit failure while pre-validate sysprep generalize internal providers; hr = 0x80073cf2",
		"Info       [0x0f0052] SYSPRP Shutting down SysPrep log",
	}
	if got := sysprepRunLines(t, m, "setupact.log"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("setupact.log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	errLog, _ := m.FS().ReadFile(sysprepPanther + "setuperr.log")
	if n := strings.Count(string(errLog), ", Error "); n != 8 || strings.Contains(string(errLog), ", Info ") {
		t.Errorf("setuperr.log has %d error lines, want the 8 Error lines only:\n%s", n, errLog)
	}
	expect(t, asAdmin(`(Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State' -Name ImageState).ImageState`), 0, "IMAGE_STATE_COMPLETE\r\n", "")

	expect(t, asAdmin(`Remove-AppxPackage -Package '`+full+`' -AllUsers`), 0, "", "")
	expect(t, asAdmin(`C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /quit /quiet`), 0, "", "")
	if !m.Generalized() {
		t.Error("not generalized after the package was removed")
	}
}

// sysprep without /generalize does not run the Appx provider.
func TestSysprepWithoutGeneralizeIgnoresAppx(t *testing.T) {
	m := newMachine(t, Options{})
	if err := m.InstallAppx("vagrant", oneDrive); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, m, `C:\Windows\System32\Sysprep\sysprep.exe /oobe /quit /quiet`), 0, "", "")
	if lines := sysprepRunLines(t, m, "setupact.log"); len(lines) != 4 {
		t.Errorf("setupact.log: %q", lines)
	}
}

// Provisioned packages: listed by Get-AppxProvisionedPackage -Online,
// tested with -contains, removed by Remove-AppxProvisionedPackage.
func TestProvisionedAppxPackages(t *testing.T) {
	m := newMachine(t, Options{})
	const store = "Microsoft.WindowsStore_22401.1400.6.0_x64__8wekyb3d8bbwe"
	if err := m.InstallAppx("", store); err != nil {
		t.Fatal(err)
	}
	if err := m.InstallAppx("", "Microsoft.WindowsCalculator_11.2401.0.0_x64__8wekyb3d8bbwe"); err != nil {
		t.Fatal(err)
	}
	script := `$names = @((Get-AppxProvisionedPackage -Online).PackageName); if ($names -contains '` + store + `') { 'yes' } else { 'no' }; @($names).Count`
	expect(t, ps(t, m, script), 0, "yes\r\n2\r\n", "")
	expect(t, ps(t, m, `(Remove-AppxProvisionedPackage -Online -PackageName '`+store+`').RestartNeeded`), 0, "False\r\n", "")
	expect(t, ps(t, m, script), 0, "no\r\n1\r\n", "")
	expect(t, ps(t, m, `if (@('a', 'b') -notcontains 'c') { 'absent' }`), 0, "absent\r\n", "")
}
