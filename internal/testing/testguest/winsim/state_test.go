package winsim

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestStateSurvivesANewMachine(t *testing.T) {
	dir := t.TempDir()
	pkgs := []Package{{FileName: "kb7-reboot.cab", Result: InstallsRebootRequired}, {FileName: "kb3-flaky.cab", Failures: 2}}
	m1 := newMachine(t, Options{StateDir: dir, ComputerName: "build-01", Packages: pkgs})
	putPackages(t, m1, "kb7-reboot.cab", "kb3-flaky.cab")
	expect(t, dism(t, m1, "kb7-reboot.cab"), ExitRebootRequired, "", "")
	if r := dism(t, m1, "kb3-flaky.cab"); r.code != ExitInstallersFailed {
		t.Fatalf("got %v", r)
	}
	if err := m1.RegistryFor("vagrant").SetMultiString(`HKCU\Software\winbake`, "Done", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, m1, `echo kept> %TEMP%\kept.txt`), 0, "", "")
	boot1 := m1.BootTime()
	m1.Close()

	// Powered off, the disk is as it was.
	m2 := newMachine(t, Options{StateDir: dir, ComputerName: "ignored", Packages: pkgs, StartOff: true})
	checkState(t, m2, StateOff)
	if m2.ComputerName() != "build-01" || m2.BootCount() != 1 || m2.PackageState("kb7-reboot.cab") != "Install Pending" || !m2.RebootPending() {
		t.Errorf("name %q, boots %d, state %q", m2.ComputerName(), m2.BootCount(), m2.PackageState("kb7-reboot.cab"))
	}
	m2.Close()

	// Booted again: servicing completes, files, registry and counters stay.
	m3 := newMachine(t, Options{StateDir: dir, Packages: pkgs})
	checkState(t, m3, StateUp)
	if m3.BootCount() != 2 || !m3.BootTime().After(boot1) {
		t.Errorf("boots %v", m3.Boots())
	}
	if m3.PackageState("kb7-reboot.cab") != "Installed" || m3.RebootPending() {
		t.Errorf("after boot: %q, pending %v", m3.PackageState("kb7-reboot.cab"), m3.RebootPending())
	}
	if v, ok, err := m3.RegistryFor("vagrant").MultiString(`HKEY_USERS\vagrant\Software\winbake`, "Done"); !ok || err != nil || !reflect.DeepEqual(v, []string{"a", "b"}) {
		t.Errorf("registry %q %v %v", v, ok, err)
	}
	expect(t, run(t, m3, `type %TEMP%\kept.txt`), 0, "kept\r\n", "")
	if r := dism(t, m3, "kb3-flaky.cab"); r.code != ExitInstallersFailed {
		t.Errorf("second attempt: %v", r)
	}
	expect(t, dism(t, m3, "kb3-flaky.cab"), 0, "", "")
	expect(t, run(t, m3, "hostname"), 0, "build-01\r\n", "")

	// The state file is JSON, replaced atomically.
	if _, err := os.Stat(filepath.Join(dir, "state.json.tmp")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary state file left: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StateDir: dir}); err == nil {
		t.Error("a corrupt state file was accepted")
	}
}

func TestRegistry(t *testing.T) {
	m := newMachine(t, Options{Users: []string{"Administrator", "vagrant"}})
	r := m.Registry()
	key := `HKLM\SOFTWARE\winbake\Test`
	if ok, err := r.KeyExists(key); ok || err != nil {
		t.Errorf("KeyExists = %v, %v", ok, err)
	}
	if err := r.SetString(key, "Name", "value"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDWORD(`hkey_local_machine\software\WINBAKE\test`, "Count", 7); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{key, `HKLM:\SOFTWARE\winbake\Test`, `HKLM:SOFTWARE\winbake\test\`, `Registry::HKEY_LOCAL_MACHINE\SOFTWARE\winbake\Test`, `Microsoft.PowerShell.Core\Registry::HKLM\SOFTWARE\winbake\Test`} {
		if v, ok, err := r.String(form, "name"); v != "value" || !ok || err != nil {
			t.Errorf("String(%s) = %q, %v, %v", form, v, ok, err)
		}
	}
	if v, ok, _ := r.DWORD(key, "COUNT"); v != 7 || !ok {
		t.Errorf("DWORD = %d, %v", v, ok)
	}
	if _, _, err := r.DWORD(key, "Name"); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("DWORD of a string: %v", err)
	}
	if _, ok, err := r.String(key, "missing"); ok || err != nil {
		t.Errorf("missing value: %v, %v", ok, err)
	}
	if names, _ := r.ValueNames(key); !reflect.DeepEqual(names, []string{"Count", "Name"}) {
		t.Errorf("ValueNames %q", names)
	}
	if err := r.DeleteValue(key, "nope"); err != nil {
		t.Errorf("DeleteValue of a missing value: %v", err)
	}
	if err := r.DeleteValue(key, "count"); err != nil {
		t.Fatal(err)
	}
	if names, _ := r.ValueNames(key); !reflect.DeepEqual(names, []string{"Name"}) {
		t.Errorf("ValueNames %q", names)
	}
	if subs, _ := r.SubKeys(cbsKey); !reflect.DeepEqual(subs, []string{"Packages"}) {
		t.Errorf("SubKeys %q", subs)
	}
	if _, err := r.SubKeys(`HKLM\NOPE`); err == nil {
		t.Error("SubKeys of a missing key")
	}
	if _, err := r.KeyExists(`HKXX\x`); err == nil {
		t.Error("unknown hive accepted")
	}
	// HKCU is per user.
	if err := r.SetString(`HKCU\Environment`, "X", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.RegistryFor("vagrant").String(`HKCU\Environment`, "X"); ok {
		t.Error("HKCU shared between users")
	}
	if v, _, _ := m.RegistryFor("vagrant").String(`HKU\Administrator\Environment`, "X"); v != "admin" {
		t.Errorf("HKU view %q", v)
	}
	if err := m.RegistryFor("Administrator").DeleteKey(`HKLM\SOFTWARE\winbake`); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.KeyExists(key); ok {
		t.Error("DeleteKey left the subkey")
	}
	// The installed Windows is described where tools look.
	if v, _, _ := r.String(`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`, "ProductName"); v != "Windows Server 2022 Datacenter" {
		t.Errorf("ProductName %q", v)
	}
}

func TestFiles(t *testing.T) {
	m := newMachine(t, Options{})
	f := m.Files()
	w, err := f.Create(`C:\Data\Sub\File.TXT`)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "one")
	w.Close()
	a, err := f.Append(`c:/data/SUB/file.txt`)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(a, "two")
	a.Close()
	rc, err := f.Open(`C:\DATA\sub\.\..\Sub\FILE.txt`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "onetwo" {
		t.Errorf("content %q", b)
	}
	st, err := f.Stat(`C:\data\sub\file.txt`)
	if err != nil || st.Name() != "File.TXT" || st.Size() != 6 {
		t.Errorf("Stat %v %v", st, err)
	}
	if _, err := f.Stat(`C:\data\nope.txt`); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrorFileNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := f.Stat(`C:\nope\nope.txt`); !errors.Is(err, ErrorPathNotFound) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := f.Append(`C:\nope\x.txt`); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Append into a missing directory: %v", err)
	}
	if _, err := f.Open(`C:\Data`); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Open of a directory: %v", err)
	}
	if _, err := f.Create(`C:\Data\bad|name`); err == nil {
		t.Error("invalid name accepted")
	}
	if _, err := f.Stat(`Z:\x`); !errors.Is(err, ErrorPathNotFound) {
		t.Errorf("missing drive: %v", err)
	}
	if _, err := f.Stat(`relative\x`); err == nil {
		t.Error("relative path accepted")
	}
	for _, n := range []string{"b.txt", "A.txt", "c"} {
		if n == "c" {
			_ = f.MkdirAll(`C:\Data\c`)
			continue
		}
		_ = m.FS().WriteFile(`C:\Data\`+n, nil)
	}
	entries, _ := f.ReadDir(`C:\data`)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"A.txt", "b.txt", "c", "Sub"}) {
		t.Errorf("ReadDir %q", names)
	}
	if err := f.Remove(`C:\Data\Sub`); !errors.Is(err, ErrorDirNotEmpty) {
		t.Errorf("Remove of a non-empty directory: %v", err)
	}
	if err := f.MkdirAll(`C:\Data\Sub\File.txt\x`); err == nil {
		t.Error("MkdirAll through a file")
	}
	if err := f.Remove(`C:\Data\sub\file.txt`); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(`C:\Data\Sub`); err != nil {
		t.Fatal(err)
	}
	// Trailing dots and blanks are dropped, as Windows does.
	if err := m.FS().WriteFile(`C:\Data\dots.txt. `, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat(`C:\Data\dots.txt`); err != nil {
		t.Error(err)
	}
	// Profiles exist once the user has logged on.
	if st, err := f.Stat(`C:\Users\vagrant\AppData\Local\Temp`); err == nil {
		t.Errorf("profile before logon: %v", st)
	}
	run(t, m, "echo")
	if _, err := f.Stat(`C:\Users\vagrant\AppData\Local\Temp`); err != nil {
		t.Error(err)
	}
}
