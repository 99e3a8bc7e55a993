package winsim

import "strings"

// The QEMU guest agent for Windows as virtio-win's
// guest-agent\qemu-ga-x86_64.msi installs it: qemu-ga.exe in
// C:\Program Files\Qemu-ga, registered as the automatic service QEMU-GA.
const (
	QemuGADir        = `C:\Program Files\Qemu-ga`
	QemuGAMSI        = "qemu-ga-x86_64.msi"
	qemuGAServiceKey = `HKLM\SYSTEM\CurrentControlSet\Services\QEMU-GA`
)

// InstallQemuGuestAgent installs the QEMU guest agent (what its MSI does):
// the program and the QEMU-GA service with automatic start.
func (m *Machine) InstallQemuGuestAgent() error {
	if err := m.files.WriteFile(QemuGADir+`\qemu-ga.exe`, []byte("MZ qemu-ga (stand-in)\r\n")); err != nil {
		return err
	}
	reg := m.RegistryFor(m.opts.Users[0])
	for _, set := range []func() error{
		func() error {
			return reg.SetExpandString(qemuGAServiceKey, "ImagePath", `"`+QemuGADir+`\qemu-ga.exe" -d --retry-path`)
		},
		func() error { return reg.SetString(qemuGAServiceKey, "DisplayName", "QEMU Guest Agent") },
		func() error { return reg.SetDWORD(qemuGAServiceKey, "Start", 2) },
		func() error { return reg.SetDWORD(qemuGAServiceKey, "Type", 0x10) },
		func() error { return reg.SetString(qemuGAServiceKey, "ObjectName", "LocalSystem") },
	} {
		if err := set(); err != nil {
			return err
		}
	}
	return nil
}

// QemuGuestAgentInstalled reports whether the QEMU-GA service exists.
func (m *Machine) QemuGuestAgentInstalled() bool {
	ok, err := m.RegistryFor(m.opts.Users[0]).KeyExists(qemuGAServiceKey)
	return err == nil && ok
}

func isQemuGAMSI(pkg string) bool {
	return strings.EqualFold(pkg[strings.LastIndexAny(pkg, `\/`)+1:], QemuGAMSI)
}
