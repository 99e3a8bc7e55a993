package qemuvm

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// The descriptor with secure-boot, enrolled-keys and requires-smm wins;
// secure-boot without enrolled keys (an empty key store) does not.
func TestFindSecureBootOVMFFromDescriptors(t *testing.T) {
	p := probeFixture(t, false, "", false)
	dir := filepath.Dir(p.CPUInfo)
	for _, f := range []string{"ms-code.fd", "ms-vars.fd", "sb-code.fd", "plain-vars.fd", "plain-code.fd"} {
		testio.WriteFile(t, filepath.Join(dir, f), "x")
	}
	desc := func(code, vars, features string) string {
		return `{"interface-types":["uefi"],"mapping":{"device":"flash","executable":{"filename":"` + filepath.Join(dir, code) +
			`","format":"raw"},"nvram-template":{"filename":"` + filepath.Join(dir, vars) + `","format":"raw"}},` +
			`"targets":[{"architecture":"x86_64","machines":["pc-q35-*"]}],"features":[` + features + `]}`
	}
	testio.WriteFile(t, filepath.Join(p.FirmwareDescs, "30-secure-no-keys.json"), desc("sb-code.fd", "plain-vars.fd", `"requires-smm","secure-boot"`))
	testio.WriteFile(t, filepath.Join(p.FirmwareDescs, "40-secure-enrolled.json"), desc("ms-code.fd", "ms-vars.fd", `"acpi-s3","enrolled-keys","requires-smm","secure-boot"`))
	testio.WriteFile(t, filepath.Join(p.FirmwareDescs, "60-plain.json"), desc("plain-code.fd", "plain-vars.fd", `"acpi-s3"`))
	got, err := p.FindSecureBootOVMF()
	if err != nil {
		t.Fatal(err)
	}
	if got != (OVMF{Code: filepath.Join(dir, "ms-code.fd"), Vars: filepath.Join(dir, "ms-vars.fd"), CodeFormat: "raw", VarsFormat: "raw", SecureBoot: true}) {
		t.Fatalf("got %+v", got)
	}
	// Without Secure Boot the plain firmware is still chosen.
	if plain, err := p.FindOVMF(); err != nil || filepath.Base(plain.Code) != "plain-code.fd" || plain.SecureBoot {
		t.Fatalf("FindOVMF %+v, %v", plain, err)
	}
}

func TestFindSecureBootOVMFDebianFallbackAndError(t *testing.T) {
	p := probeFixture(t, false, "", false)
	testio.WriteFile(t, filepath.Join(p.DebianOVMFDir, "OVMF_CODE_4M.fd"), "x")
	testio.WriteFile(t, filepath.Join(p.DebianOVMFDir, "OVMF_VARS_4M.fd"), "x")
	if _, err := p.FindSecureBootOVMF(); err == nil || !strings.HasPrefix(err.Error(), "secure_boot:") || !strings.Contains(err.Error(), "enrolled-keys") {
		t.Fatalf("want a secure_boot error, got %v", err)
	}
	testio.WriteFile(t, filepath.Join(p.DebianOVMFDir, "OVMF_CODE_4M.secboot.fd"), "x")
	testio.WriteFile(t, filepath.Join(p.DebianOVMFDir, "OVMF_VARS_4M.ms.fd"), "x")
	got, err := p.FindSecureBootOVMF()
	if err != nil || filepath.Base(got.Code) != "OVMF_CODE_4M.secboot.fd" || filepath.Base(got.Vars) != "OVMF_VARS_4M.ms.fd" || !got.SecureBoot {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestVMSpecArgsSecureBoot(t *testing.T) {
	spec := baseSpec()
	spec.SecureBoot = true
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Flatten(args), " ")
	for _, w := range []string{"-machine q35,smm=on ", "-global driver=cfi.pflash01,property=secure,value=on -drive if=pflash,format=raw,unit=0,readonly=on"} {
		if !strings.Contains(got, w) {
			t.Errorf("args lack %q:\n%s", w, got)
		}
	}
	plain, _ := baseSpec().Args()
	if s := strings.Join(Flatten(plain), " "); strings.Contains(s, "smm=on") || strings.Contains(s, "cfi.pflash01") {
		t.Errorf("Secure Boot arguments without secure_boot:\n%s", s)
	}
}
