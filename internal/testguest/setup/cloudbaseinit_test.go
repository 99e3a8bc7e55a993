package setup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"
)

func TestISOLabelReadsTheVolumeIdentifier(t *testing.T) {
	w, err := iso9660.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cleanup()
	if err := w.AddFile(strings.NewReader("{}"), "openstack/latest/meta_data.json"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cd.iso")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTo(f, "config-2"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if label, ok := isoLabel(path); !ok || label != "config-2" {
		t.Errorf("label %q, %v", label, ok)
	}
	// Not an ISO 9660 image: no label.
	other := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(other, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if label, ok := isoLabel(other); ok {
		t.Errorf("a blank disk has the label %q", label)
	}
}

func TestCloudbaseInitAccountsLogOnUnlessTheirPasswordMustChange(t *testing.T) {
	st := &State{Accounts: []Account{{Name: "packer", Password: "Build-1", Group: "Administrators"}}}
	st.SetCloudbaseInitAccount("Admin", "Inst-1", true)
	st.SetCloudbaseInitAccount("ops", "Gen-1", false)
	st.SetCloudbaseInitAccount("admin", "Inst-2", true)
	if len(st.Accounts) != 3 {
		t.Fatalf("accounts %+v", st.Accounts)
	}
	if a := st.Accounts[1]; a.Name != "Admin" || a.Password != "Inst-2" || !a.CloudbaseInit || a.NoLogon {
		t.Errorf("Admin: %+v", a)
	}
	if a := st.Accounts[2]; !a.NoLogon {
		t.Errorf("ops: %+v", a)
	}
}
