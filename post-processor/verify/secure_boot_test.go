package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/efivars"
	"github.com/winbake/packer-plugin-winbake/internal/efivars/efivarstest"
	"github.com/winbake/packer-plugin-winbake/internal/image"
)

func secureBootImage(firmware string, secureBoot bool, vars string) *inputImage {
	return &inputImage{EFIVarsPath: vars, Manifest: image.GeneralizedManifest{Manifest: image.Manifest{Firmware: firmware, SecureBoot: secureBoot}}}
}

// The report says whether the image's UEFI variables hold the 2023 CAs:
// a pass with them, a warning without them on a Secure Boot image, a note
// without Secure Boot, nothing for BIOS; none of them fails the image.
func TestSecureBootCertificatesLine(t *testing.T) {
	with2023 := efivarstest.WriteVars(t, t.TempDir(), efivarstest.Enrollment{Variable: "db", CommonName: efivars.WindowsUEFICA2023},
		efivarstest.Enrollment{Variable: "KEK", CommonName: efivars.KEKCA2023})
	broken := filepath.Join(t.TempDir(), "efivars.fd")
	if err := os.WriteFile(broken, []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		in       *inputImage
		result   string
		evidence []string
	}{
		{"Debian's 2011 keys, Secure Boot", secureBootImage("uefi", true, efivarstest.DebianMicrosoftVars), ResultWarn,
			[]string{"missing db: Windows UEFI CA 2023, KEK: Microsoft Corporation KEK 2K CA 2023", "KEK: Debian UEFI Secure Boot (PK/KEK key); Microsoft Corporation KEK CA 2011", "does not start"}},
		{"Debian's 2011 keys, no Secure Boot", secureBootImage("uefi", false, efivarstest.DebianMicrosoftVars), ResultInfo,
			[]string{"missing db: Windows UEFI CA 2023", "Secure Boot is off"}},
		{"no keys at all", secureBootImage("uefi", true, "/usr/share/OVMF/OVMF_VARS_4M.fd"), ResultWarn,
			[]string{"PK: (none) | KEK: (none) | db: (none)"}},
		{"2023 CAs", secureBootImage("uefi", true, with2023), ResultPass, []string{"db: Microsoft Windows Production PCA 2011; Microsoft Corporation UEFI CA 2011; Windows UEFI CA 2023"}},
		{"unreadable", secureBootImage("uefi", true, broken), ResultWarn, []string{"could not be read", "too short for a firmware volume header"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Report{}
			checkSecureBootCertificates(c.in, r)
			if len(r.Checks) != 1 || r.Checks[0].Name != checkSecureBootCAs || r.Checks[0].Result != c.result {
				t.Fatalf("checks %+v, want one %q line", r.Checks, c.result)
			}
			for _, want := range c.evidence {
				if !strings.Contains(r.Checks[0].Evidence, want) {
					t.Errorf("evidence lacks %q: %s", want, r.Checks[0].Evidence)
				}
			}
			if len(r.Failed()) != 0 {
				t.Errorf("failed: %v", r.Failed())
			}
		})
	}
	r := &Report{}
	checkSecureBootCertificates(secureBootImage("bios", false, ""), r)
	if len(r.Checks) != 0 {
		t.Errorf("a BIOS image got %+v", r.Checks)
	}
	r = &Report{Passed: true}
	checkSecureBootCertificates(secureBootImage("uefi", true, efivarstest.DebianMicrosoftVars), r)
	if table := r.Table(); !strings.Contains(table, "All checks passed.\nWarning: "+checkSecureBootCAs+"\n") {
		t.Errorf("table:\n%s", table)
	}
}
