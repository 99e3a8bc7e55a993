package winsim

import (
	"os"
	"path/filepath"
	"testing"
)

// sysprep /generalize /unattend:<file> keeps that answer file for the
// next boot's Setup passes; without /generalize nothing is kept.
func TestSysprepKeepsItsAnswerFile(t *testing.T) {
	dir := t.TempDir()
	m := newMachine(t, Options{StateDir: dir})
	answer := []byte(`<unattend xmlns="urn:schemas-microsoft-com:unattend"/>`)
	if err := m.FS().WriteFile(`C:\Windows\Temp\sysprep.xml`, answer); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, SysprepAnswerFile)
	if r := run(t, m, `C:\Windows\System32\Sysprep\sysprep.exe /oobe /quit /unattend:C:\Windows\Temp\sysprep.xml`); r.code != 0 {
		t.Fatalf("sysprep /oobe /quit: %v", r)
	}
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Errorf("kept an answer file without /generalize (%v)", err)
	}
	if r := run(t, m, `C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /quit /unattend:C:\Windows\Temp\sysprep.xml`); r.code != 0 {
		t.Fatalf("sysprep /generalize: %v", r)
	}
	if b, err := os.ReadFile(kept); err != nil || string(b) != string(answer) {
		t.Errorf("kept %q, %v", b, err)
	}
}
