package winsim

import (
	"fmt"
	"strings"
)

// PowerShell's Certificate provider (the Cert: drive; about_Certificate_Provider
// in MicrosoftDocs/PowerShell-Docs reference/5.1/Microsoft.PowerShell.Security/About):
// Cert:\<store location>\<store>\<thumbprint>. The model has
// LocalMachine\My, the machine's WinRMConfig.Certificates: Test-Path of
// the drive, the location, the store or a certificate, and Remove-Item of
// a certificate, whose -DeleteKey deletes its private key too.

// certPath splits a Cert: path below the drive root into its parts.
func certPath(rest string) []string {
	var parts []string
	for _, s := range strings.Split(strings.Trim(rest, `\/`), `\`) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return parts
}

// certItemExists is Test-Path on the Cert: drive.
func (rt *psRuntime) certItemExists(p, rest string, e *psElem) (ok, leaf bool, err error) {
	parts := certPath(rest)
	if len(parts) > 0 && !strings.EqualFold(parts[0], "LocalMachine") || len(parts) > 1 && !strings.EqualFold(parts[1], "My") || len(parts) > 3 {
		return false, false, &psUnsupported{msg: fmt.Sprintf("the certificate path %q (Cert:\\LocalMachine\\My is modelled)", p), at: e.at}
	}
	if len(parts) < 3 {
		return true, false, nil
	}
	werr := rt.m.WinRM(func(c *WinRMConfig) error {
		ok = c.Certificate(parts[2]) != nil
		return nil
	})
	if werr != nil {
		return false, false, &psUnsupported{msg: fmt.Sprintf("Test-Path %s: %v", p, werr), at: e.at}
	}
	return ok, true, nil
}

// removeCertificate is Remove-Item of Cert:\LocalMachine\My\<thumbprint>.
// Without -DeleteKey the key would stay in the machine's key store, which
// the model does not hold apart from its certificate: that is refused.
func (c *psCall) removeCertificate(p, rest string) error {
	parts := certPath(rest)
	if len(parts) != 3 || !strings.EqualFold(parts[0], "LocalMachine") || !strings.EqualFold(parts[1], "My") {
		return &psUnsupported{msg: fmt.Sprintf("Remove-Item on the certificate path %q (a certificate of Cert:\\LocalMachine\\My is modelled)", p), at: c.e.at}
	}
	if !c.flag("deletekey") {
		return &psUnsupported{msg: fmt.Sprintf("Remove-Item %s without -DeleteKey (the key staying in the machine's key store is not modelled)", p), at: c.e.at}
	}
	found := false
	if err := c.rt.m.WinRM(func(w *WinRMConfig) error {
		found = w.RemoveCertificate(parts[2])
		return nil
	}); err != nil {
		return &psUnsupported{msg: fmt.Sprintf("Remove-Item %s: %v", p, err), at: c.e.at}
	}
	if !found {
		return c.pathNotFound(p, "RemoveItemCommand")
	}
	return nil
}
