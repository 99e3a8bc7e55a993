package verify

import (
	"fmt"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/efivars"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// checkSecureBootCAs names the report line on the image's Secure Boot
// certificates.
const checkSecureBootCAs = "Secure Boot 2023 CAs in the UEFI variables"

// checkSecureBootCertificates reports whether the image's UEFI variables
// (its efivars.fd) hold Microsoft's 2023 CAs: Windows UEFI CA 2023 in db,
// which signs new Windows boot managers, and Microsoft Corporation KEK 2K
// CA 2023 in KEK, with which Windows signs db and dbx updates; the 2011 CAs
// they replace expired in June 2026 (Microsoft KB5062710). Certificates
// reach a VM only through fresh or reset variables (utmapp/UTM #7257), so
// an image built from a store without them keeps lacking them.
//
// Missing CAs are a warning, not a failure: the image boots today (its
// boot manager is signed under the 2011 chain, which firmware still
// accepts), and a Nova instance does not boot with this file but with
// variables from the compute host's firmware template. For a Secure Boot
// image the warning says what breaks once Windows moves to a boot manager
// signed by the 2023 CA; without Secure Boot it is information.
func checkSecureBootCertificates(in *inputImage, r *Report) {
	m := &in.Manifest
	if m.Firmware != qemuvm.FirmwareUEFI {
		return
	}
	store, err := efivars.ReadFile(in.EFIVarsPath)
	var certs efivars.SecureBootCertificates
	if err == nil {
		certs, err = store.SecureBootCertificates()
	}
	if err != nil {
		r.add(checkSecureBootCAs, ResultWarn, fmt.Sprintf("the UEFI variables could not be read: %v", err))
		return
	}
	missing := certs.Missing2023()
	switch {
	case len(missing) == 0:
		r.pass(checkSecureBootCAs, certs.Summary())
	case m.SecureBoot:
		r.add(checkSecureBootCAs, ResultWarn, fmt.Sprintf("missing %s (%s): under these variables a Windows boot manager signed only by Windows UEFI CA 2023 does not start, and Windows cannot apply db/dbx updates signed with the 2023 KEK; start the build from a variable store with the 2023 CAs (instances on a cloud get the compute host's firmware template, check it too)",
			strings.Join(missing, ", "), certs.Summary()))
	default:
		r.add(checkSecureBootCAs, ResultInfo, fmt.Sprintf("missing %s (%s); Secure Boot is off in this image, so the firmware checks no signature now", strings.Join(missing, ", "), certs.Summary()))
	}
}
