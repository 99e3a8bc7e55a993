package setup

import (
	"strings"
	"testing"
)

// The first logon installs the QEMU guest agent from the virtio-win CD
// (F: after the install ISO and the answer CD) and adds the VirtIO Serial
// driver it talks through.
func TestFirstLogonInstallsQemuGuestAgentFromMedia(t *testing.T) {
	virtio := testCD(t, "sr2", "F", map[string]string{"guest-agent/qemu-ga-x86_64.msi": "x", "vioserial/2k22/amd64/vioser.inf": "x"})
	media := []Medium{testCD(t, "sr0", "D", map[string]string{"sources/install.wim": "x"}), testCD(t, "sr1", "E", map[string]string{"autounattend.xml": "x"}), virtio}
	st := &State{}
	for _, line := range []string{
		`pnputil /add-driver F:\vioserial\2k22\amd64\vioser.inf /install`,
		`msiexec /i F:\guest-agent\qemu-ga-x86_64.msi /qn /norestart`,
	} {
		if !usesMedia(line) {
			t.Fatalf("%s: not a media command", line)
		}
		if out := InterpretWithMedia(st, media, line); !out.Understood || strings.Contains(out.Summary, "not understood") {
			t.Errorf("%s -> %+v", line, out)
		}
	}
	if !st.QemuGuestAgent || len(st.Drivers) != 1 || st.Drivers[0] != "vioser" {
		t.Errorf("state: agent %v, drivers %v", st.QemuGuestAgent, st.Drivers)
	}

	// The wrong drive letter: msiexec cannot open the package.
	st = &State{}
	out := InterpretWithMedia(st, media, `msiexec.exe /i "E:\guest-agent\qemu-ga-x86_64.msi" /qn`)
	if !strings.Contains(out.Summary, "1619") || !strings.Contains(out.Summary, `E:\guest-agent\qemu-ga-x86_64.msi: not found`) || st.QemuGuestAgent {
		t.Errorf("missing package: %+v, agent %v", out, st.QemuGuestAgent)
	}
	// Other packages and forms are not modelled.
	for _, line := range []string{
		`msiexec /i F:\virtio-win-gt-x64.msi /qn`,
		`msiexec /i F:\guest-agent\qemu-ga-x86_64.msi`,
		`msiexec /x F:\guest-agent\qemu-ga-x86_64.msi /qn`,
		`pnputil /add-driver F:\*.inf /subdirs /install`,
	} {
		st = &State{}
		if out := InterpretWithMedia(st, media, line); out.Understood || !strings.Contains(out.Summary, "not understood") || st.QemuGuestAgent || len(st.Drivers) > 0 {
			t.Errorf("%s -> %+v", line, out)
		}
	}
	if usesMedia(`winrm quickconfig -q`) || usesMedia(`cmd.exe /c echo msiexec`) {
		t.Error("usesMedia matches commands that do not read the media")
	}
}
