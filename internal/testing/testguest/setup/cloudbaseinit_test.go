package setup

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

func TestCloudbaseInitAccountsAreRecordedWithTheirLastPassword(t *testing.T) {
	st := &State{Accounts: []Account{{Name: "packer", Password: "Build-1", Group: "Administrators"}}}
	st.SetCloudbaseInitAccount("Admin", "Inst-1")
	st.SetCloudbaseInitAccount("ops", "Gen-1")
	st.SetCloudbaseInitAccount("admin", "Inst-2")
	if len(st.Accounts) != 3 {
		t.Fatalf("accounts %+v", st.Accounts)
	}
	if a := st.Accounts[1]; a.Name != "Admin" || a.Password != "Inst-2" || !a.CloudbaseInit {
		t.Errorf("Admin: %+v", a)
	}
	if a := st.Accounts[2]; a.Name != "ops" || a.Password != "Gen-1" || !a.CloudbaseInit {
		t.Errorf("ops: %+v", a)
	}
	if a := st.Accounts[0]; a.CloudbaseInit {
		t.Errorf("packer: %+v", a)
	}
}

// The boot looks for cloudbase-init's program on the simulated Windows'
// disk before opening it: the path is where msiexec puts it.
func TestCloudbaseInitProgramPathOnTheWinsimDisk(t *testing.T) {
	root := t.TempDir()
	m, err := winsim.New(winsim.Options{StateDir: filepath.Join(root, WinsimStateDir), Users: []string{"packer"}, Failf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if cloudbaseInitOnDisk(root) {
		t.Error("a fresh Windows has cloudbase-init")
	}
	if err := m.FS().WriteFile(`C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, []byte("MSI")); err != nil {
		t.Fatal(err)
	}
	if code, err := m.ConsoleSystem().Processes().Run(context.Background(), "msiexec.exe", []string{"/i", `C:\Windows\Temp\CloudbaseInitSetup_x64.msi`, "/qn"}, nil, nil); err != nil || code != 0 {
		t.Fatalf("msiexec: %d %v", code, err)
	}
	if !cloudbaseInitOnDisk(root) {
		t.Error("cloudbase-init installed but not found")
	}
}
