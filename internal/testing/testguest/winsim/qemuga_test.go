package winsim

import (
	"strings"
	"testing"
)

// winbake's manifest check (builder/common service-installed.ps1) sees the
// QEMU-GA service once virtio-win's guest agent MSI is installed.
func TestMsiexecInstallsQemuGuestAgent(t *testing.T) {
	m := newMachine(t, Options{Drives: []string{"E"}})
	check := `if (Test-Path -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Services\QEMU-GA') {
    Write-Output 'installed'
} else {
    Write-Output 'absent'
}`
	expect(t, ps(t, m, check), 0, "absent\r\n", "")
	if m.QemuGuestAgentInstalled() {
		t.Fatal("installed before the MSI ran")
	}
	if err := m.FS().WriteFile(`E:\guest-agent\qemu-ga-x86_64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	r := ps(t, m, `$p = Start-Process -FilePath 'msiexec.exe' -ArgumentList '/i E:\guest-agent\qemu-ga-x86_64.msi /qn /norestart /l*v C:\Windows\Temp\qga.log' -Wait -PassThru; exit $p.ExitCode`)
	expect(t, r, 0, "", "")
	expect(t, ps(t, m, check), 0, "installed\r\n", "")
	if !m.QemuGuestAgentInstalled() {
		t.Error("QemuGuestAgentInstalled is false after the MSI")
	}
	expect(t, ps(t, m, `(Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\QEMU-GA' -Name Start).Start`), 0, "2\r\n", "")
	if ok, _ := m.FS().exists(QemuGADir + `\qemu-ga.exe`); !ok {
		t.Error("no qemu-ga.exe")
	}
	log, _ := m.FS().ReadFile(`C:\Windows\Temp\qga.log`)
	if !strings.Contains(string(log), "Installation completed successfully") {
		t.Errorf("log: %s", log)
	}
}
