package qemuvm

import (
	"fmt"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/efivars"
)

// ManifestSecureBootCertificates reads the Secure Boot certificates (PK,
// KEK, db, dbx) of the UEFI variable store at path, the efivars.fd an image
// keeps, for its manifest, and says what it found. A store winbake cannot
// read (a firmware that does not lay out its variables as EDK2 does) is
// said, and leaves the manifest without certificates: the image is as good
// without the record.
func ManifestSecureBootCertificates(ui packersdk.Ui, path string) *efivars.SecureBootCertificates {
	store, err := efivars.ReadFile(path)
	if err == nil {
		var certs efivars.SecureBootCertificates
		if certs, err = store.SecureBootCertificates(); err == nil {
			line := "Secure Boot certificates in the UEFI variables: " + certs.Summary()
			if missing := certs.Missing2023(); len(missing) > 0 {
				line += fmt.Sprintf("; without Microsoft's 2023 CAs (%s), which replace the 2011 ones that expire in 2026", strings.Join(missing, ", "))
			}
			ui.Say(line)
			return &certs
		}
	}
	ui.Say(fmt.Sprintf("The Secure Boot certificates of the UEFI variables are not recorded: %v", err))
	return nil
}
