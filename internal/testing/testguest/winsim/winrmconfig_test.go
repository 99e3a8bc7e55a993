package winsim

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// The WinRM configuration as winbake's first logon and winbake-sysprep
// change it, through the programs and the Cert: drive, and what the
// service then serves.
func TestWinRMConfigCommands(t *testing.T) {
	cfg := NewWinRMConfig()
	var changes atomic.Int32
	m := newMachine(t, Options{WinRM: &cfg, WinRMChanged: func() { changes.Add(1) }})
	cert, err := winrmsec.NewBuildCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := cert.PFX("0123456789abcdef0123456789abcdef", 20348)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FS().WriteFile(`C:\media\winrm.pfx`, pfx); err != nil {
		t.Fatal(err)
	}
	thumb := cert.Thumbprint()

	r := run(t, m, `winrm quickconfig -quiet`)
	if r.code != 0 || !strings.Contains(r.stdout, "Created a WinRM listener on HTTP://*") {
		t.Errorf("quickconfig: %v", r)
	}
	// A wrong password leaves the store as it is.
	if r := run(t, m, `certutil -f -p 00 -importpfx My C:\media\winrm.pfx NoExport`); r.code == 0 || cfg.Certificate(thumb) != nil {
		t.Errorf("import with a wrong password: %v", r)
	}
	r = run(t, m, `certutil -f -p 0123456789abcdef0123456789abcdef -importpfx My C:\media\winrm.pfx NoExport`)
	if r.code != 0 || cfg.Certificate(thumb) == nil || cfg.Certificate(thumb).Exportable {
		t.Errorf("import: %v", r)
	}
	for _, line := range []string{
		`winrm create winrm/config/Listener?Address=*+Transport=HTTPS @{CertificateThumbprint="` + thumb + `"}`,
		`netsh advfirewall firewall add rule name="WinRM HTTPS (winbake build)" dir=in action=allow protocol=TCP localport=5986 profile=any`,
		`winrm set winrm/config/service/auth @{Basic="true"}`,
	} {
		if r := run(t, m, line); r.code != 0 {
			t.Errorf("%s: %v", line, r)
		}
	}
	eps, auth, reject, notes := cfg.Endpoints()
	// quickconfig opened 5985 for the Public profile (the network's).
	if len(eps) != 2 || eps[1].Transport != "HTTPS" || eps[1].Certificate == nil || auth != wsman.AuthBasic|wsman.AuthNTLM || !reject {
		t.Errorf("endpoints %+v, auth %v, reject unencrypted %t, notes %v", eps, auth, reject, notes)
	}

	// winbake-sysprep's closing, one cmd.exe line as it runs it.
	r = run(t, m, `winrm delete winrm/config/Listener?Address=*+Transport=HTTPS & `+
		`netsh advfirewall firewall delete rule name="WinRM HTTPS (winbake build)" & `+
		`powershell.exe -NoProfile -NonInteractive -Command "Remove-Item -Path Cert:\LocalMachine\My\`+thumb+` -DeleteKey" & `+
		`winrm set winrm/config/service/auth @{Basic="false"} & `+
		`powershell.exe -NoProfile -Command "Test-Path Cert:\LocalMachine\My\`+thumb+`"`)
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted 1 rule(s).") || !strings.HasSuffix(strings.TrimSpace(r.stdout), "False") {
		t.Errorf("closing: %v", r)
	}
	eps, auth, reject, _ = cfg.Endpoints()
	if len(eps) != 1 || eps[0].Transport != "HTTP" || auth != wsman.AuthNTLM || !reject || len(cfg.Certificates) != 0 {
		t.Errorf("after closing: endpoints %+v, auth %v, reject %t, certificates %d", eps, auth, reject, len(cfg.Certificates))
	}
	r = run(t, m, `netsh advfirewall firewall show rule name="WinRM HTTPS (winbake build)"`)
	expect(t, r, 1, "\r\nNo rules match the specified criteria.\r\n\r\n", "")
	if changes.Load() < 6 {
		t.Errorf("%d change notifications", changes.Load())
	}
}

// What the model does not cover is reported, never answered with success.
func TestWinRMConfigNotModelled(t *testing.T) {
	cfg := NewWinRMConfig()
	f := &failures{}
	m := newMachine(t, Options{WinRM: &cfg, Failf: f.Failf})
	for line, want := range map[string]string{
		`winrm enumerate winrm/config/listener`:                                                      "winrm enumerate",
		`winrm delete winrm/config/Listener?Address=*+Transport=HTTPS`:                               "does not exist",
		`winrm create winrm/config/Listener?Address=*+Transport=HTTPS @{CertificateThumbprint="AB"}`: "not in LocalMachine",
		`netsh advfirewall firewall add rule name=x dir=out action=allow protocol=TCP localport=1`:   "dir=out",
		`certutil -store My`: "only -importPFX",
		`powershell.exe -NoProfile -Command "Remove-Item Cert:\LocalMachine\My\AB"`: "without -DeleteKey",
	} {
		if r := run(t, m, line); r.code == 0 {
			t.Errorf("%s: exit 0", line)
		}
		f.expectReported(t, want)
	}
	// A machine without the model reports every use.
	bare := newMachine(t, Options{Failf: f.Failf})
	run(t, bare, `winrm quickconfig -q`)
	f.expectReported(t, "no WinRM configuration model")
}
