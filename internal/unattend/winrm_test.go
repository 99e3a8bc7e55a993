package unattend

import (
	"strings"
	"testing"
)

func httpsSettings() Settings {
	return Settings{
		Firmware: FirmwareBIOS, ImageName: "Windows Server 2022 SERVERSTANDARDCORE", Password: testPassword,
		WinRM: WinRMSettings{
			HTTPS: true, Thumbprint: "0123456789ABCDEF0123456789ABCDEF01234567",
			PFXFile: "winrm.pfx", PFXPassword: "00112233445566778899aabbccddeeff", FirewallRule: "WinRM HTTPS (winbake build)",
		},
	}
}

// Over HTTPS nothing allows unencrypted messages or opens 5985, the
// certificate is imported non-exportable before the listener that names
// it is created, and Basic comes last (or not at all with NTLM).
func TestWinRMCommandsHTTPS(t *testing.T) {
	s := httpsSettings()
	cmds := s.WinRMCommands()
	var all []string
	importAt, listenerAt := -1, -1
	for i, c := range cmds {
		all = append(all, c.CommandLine)
		if strings.Contains(c.CommandLine, "-importpfx My %d:\\winrm.pfx NoExport") {
			importAt = i
		}
		if strings.Contains(c.CommandLine, `Transport=HTTPS @{CertificateThumbprint="`+s.WinRM.Thumbprint+`"}`) {
			listenerAt = i
		}
	}
	text := strings.Join(all, "\n")
	for _, bad := range []string{"AllowUnencrypted", "localport=5985"} {
		if strings.Contains(text, bad) {
			t.Errorf("HTTPS commands contain %q:\n%s", bad, text)
		}
	}
	if importAt < 0 || listenerAt < importAt {
		t.Errorf("import at %d, listener at %d:\n%s", importAt, listenerAt, text)
	}
	if last := cmds[len(cmds)-2].CommandLine; !strings.Contains(last, `@{Basic="true"}`) {
		t.Errorf("Basic is not switched on last: %q", last)
	}
	s.WinRM.NoBasic = true
	if text := commandText(s.WinRMCommands()); strings.Contains(text, "Basic") {
		t.Errorf("NoBasic still enables Basic:\n%s", text)
	}
	if out, err := Render(s); err != nil || !strings.Contains(string(out), "certutil -f -p ") {
		t.Errorf("Render: %v", err)
	}

	s = httpsSettings()
	s.WinRM.Thumbprint = "abc"
	s.WinRM.PFXPassword = "a b"
	if _, err := Render(s); err == nil || !strings.Contains(err.Error(), "thumbprint") || !strings.Contains(err.Error(), "password") {
		t.Errorf("bad HTTPS settings: %v", err)
	}
}

func commandText(cmds []Command) string {
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString(c.CommandLine + "\n")
	}
	return b.String()
}
