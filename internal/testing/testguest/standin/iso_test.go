package standin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/cdfs"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/setup"
)

// The stand-in ISO passes winbake's install-image check with the image
// names of real Windows Server 2022 media, and boots under BIOS and UEFI;
// its EFI system image holds the Secure Boot chain of signed media.
func TestISO(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the stand-in ISO, which make quick does not build")
	}
	iso := isoFile(t)
	m, err := installmedia.ReadISO(iso)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Windows Server 2022 SERVERSTANDARDCORE", "Windows Server 2022 SERVERSTANDARD",
		"Windows Server 2022 SERVERDATACENTERCORE", "Windows Server 2022 SERVERDATACENTER",
	}
	if len(m.Images) != len(want) {
		t.Fatalf("images = %+v", m.Images)
	}
	for i, name := range want {
		img, err := m.FindImage(name)
		if err != nil {
			t.Fatal(err)
		}
		if img.Index != i+1 || img.Arch != "amd64" || img.Version.Build != 20348 || !img.IsServer() {
			t.Errorf("%s: %+v", name, img)
		}
		if folder, err := img.VirtioDriverFolder(); err != nil || folder != "2k22" {
			t.Errorf("%s: virtio folder %q %v", name, folder, err)
		}
	}
	// Setup reads its files through the CDFS model, as Windows would find
	// them on this ISO (ISO 9660 names, path table).
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vol, err := cdfs.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if vol.PathTableSize() == 0 || vol.UDF() {
		t.Errorf("CDFS mounts %s", vol.Describe())
	}
	for _, name := range setup.InstallSourceFiles {
		if st, err := vol.Stat(name); err != nil || st.IsDir() || st.Size() == 0 {
			t.Errorf("%s through CDFS: %+v %v", name, st, err)
		}
	}
	out, err := exec.Command("xorriso", "-indev", iso, "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	report := string(out)
	if !strings.Contains(report, "El Torito boot img :   1  BIOS") || !strings.Contains(report, "El Torito boot img :   2  UEFI") {
		t.Errorf("El Torito boot images (want BIOS and UEFI):\n%s", report)
	}

	dir := t.TempDir()
	efiImg := filepath.Join(dir, "efi.img")
	if out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/boot/efi.img", efiImg).CombinedOutput(); err != nil {
		t.Fatalf("xorriso -extract /boot/efi.img: %v: %s", err, out)
	}
	for _, f := range []struct{ name, issuer string }{
		{"BOOTX64.EFI", "Microsoft Corporation UEFI CA 2011"}, // shim
		{"grubx64.efi", "Debian Secure Boot CA"},              // trusted by shim
	} {
		local := filepath.Join(dir, f.name)
		if out, err := exec.Command("mcopy", "-i", efiImg, "::/EFI/BOOT/"+f.name, local).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v: %s", f.name, err, out)
		}
		out, _ := exec.Command("sbverify", "--list", local).CombinedOutput()
		if !slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool {
			l = strings.TrimSpace(l)
			return strings.HasPrefix(l, "issuer:") && strings.HasSuffix(l, "/CN="+f.issuer)
		}) {
			t.Errorf("\\EFI\\BOOT\\%s is not signed by %s:\n%s", f.name, f.issuer, out)
		}
	}
}
