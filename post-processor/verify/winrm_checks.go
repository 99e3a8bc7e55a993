package verify

import (
	"context"
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// The checks of the door WinRM leaves in the image, besides the logon the
// other checks run over.
//
// winbake-verify logs on the way Windows' defaults allow on the HTTP
// listener, which Windows Server keeps: NTLM with message encryption
// (MS-WSMV 2.2.9.1; winrmsec.SealedNTLMTransport), through the port forward
// on 127.0.0.1, so nothing crosses a network. A certificate
// cloudbase-init made in the instance is not known ahead, so the HTTPS
// listener is checked from the wire instead: it answers TLS with the
// certificate whose thumbprint cloudbase-init logs on COM1.

// Check names.
const (
	checkWinRMLogon    = "WinRM logon (NTLM, encrypted)"
	checkHTTPRefuses   = "WinRM over HTTP refuses Basic and unencrypted messages"
	checkHTTPSKept     = "WinRM over HTTPS (keep_winrm = true)"
	checkHTTPSAbsent   = "no WinRM over HTTPS (keep_winrm = false)"
	checkNoBuildWinRM  = "no build WinRM left"
	cloudbaseHTTPSText = "Configuring WinRM listener for protocol: HTTPS, certificate thumbprint: "
)

// cloudbaseHTTPSThumbprint is the thumbprint cloudbase-init's
// ConfigWinRMListenerPlugin logs for the HTTPS listener it creates
// (plugins/windows/winrmlistener.py execute).
var cloudbaseHTTPSThumbprint = regexp.MustCompile(regexp.QuoteMeta(cloudbaseHTTPSText) + `([0-9A-Fa-f]{40})`)

// winrmDoor is what the wire showed of the instance's WinRM.
type winrmDoor struct {
	// Basic and Unsealed are logons over HTTP with Basic and with NTLM
	// without encryption; zero when not probed (no password).
	Basic, Unsealed winrmsec.Logon
	Probed          bool
	// HTTPSCert is the certificate a TLS listener on 5986 presented, or
	// HTTPSErr why none did.
	HTTPSCert *x509.Certificate
	HTTPSErr  error
}

// silent reports whether nothing answered on the HTTP port: WinRM closed
// altogether.
func (d winrmDoor) silent() bool {
	return d.Probed && !d.Basic.Accepted && !d.Basic.Refused && !d.Unsealed.Accepted && !d.Unsealed.Refused
}

// probeDoor looks at the instance's WinRM from the host, through the
// forwards to its ports 5985 and 5986.
func probeDoor(ctx context.Context, httpPort, httpsPort int, user, password string) winrmDoor {
	var d winrmDoor
	if password != "" {
		d.Basic = winrmsec.ProbeHTTPLogon(ctx, "127.0.0.1", httpPort, user, password, false)
		d.Unsealed = winrmsec.ProbeHTTPLogon(ctx, "127.0.0.1", httpPort, user, password, true)
		d.Probed = true
	}
	if httpsPort != 0 {
		d.HTTPSCert, d.HTTPSErr = winrmsec.ProbeTLS(ctx, "127.0.0.1", httpsPort)
	} else {
		d.HTTPSErr = fmt.Errorf("no port forwarded to 5986")
	}
	return d
}

// checkDoor reports the HTTP and HTTPS checks.
func (k *checker) checkDoor(r *Report) {
	d := k.Door
	keep := boolOr(k.Config.KeepWinRM, true)
	switch {
	case !d.Probed:
		r.add(checkHTTPRefuses, ResultNotRun, "no password to try a logon with")
	case d.silent() && !keep:
		r.pass(checkHTTPRefuses, fmt.Sprintf("nothing answers on port 5985 (%v)", d.Basic.Err))
	case k.Comm == nil && !d.Basic.Accepted && !d.Unsealed.Accepted:
		// A refusal proves something only for credentials Windows takes.
		r.add(checkHTTPRefuses, ResultNotRun, "the account's logon failed with NTLM and encryption too, so a refusal of Basic proves nothing")
	case d.Basic.Refused && d.Unsealed.Refused:
		r.pass(checkHTTPRefuses, "with the credentials the encrypted NTLM logon took, a Basic logon and an unencrypted NTLM logon on port 5985 were refused with 401 (Service/Auth/Basic and AllowUnencrypted are off)")
	default:
		r.fail(checkHTTPRefuses, fmt.Sprintf("on port 5985 a Basic logon was %s and an unencrypted NTLM logon %s: the password or the commands would cross the network in the clear", d.Basic, d.Unsealed))
	}

	build := k.buildThumbprint()
	logged := ""
	if m := cloudbaseHTTPSThumbprint.FindStringSubmatch(k.SerialText); m != nil {
		logged = strings.ToUpper(m[1])
	}
	if keep {
		switch {
		case d.HTTPSCert == nil:
			r.fail(checkHTTPSKept, fmt.Sprintf("no TLS listener answers on port 5986 (%v); with cloudbase-init, ConfigWinRMListenerPlugin creates one at the first boot", d.HTTPSErr))
		case build != "" && winrmsec.Thumbprint(d.HTTPSCert.Raw) == build:
			r.fail(checkHTTPSKept, "the listener on 5986 presents the build's certificate "+build+", whose key the golden image holds")
		case logged != "" && winrmsec.Thumbprint(d.HTTPSCert.Raw) != logged:
			r.fail(checkHTTPSKept, fmt.Sprintf("the listener on 5986 presents certificate %s, not the %s cloudbase-init logged", winrmsec.Thumbprint(d.HTTPSCert.Raw), logged))
		case logged != "":
			r.pass(checkHTTPSKept, "TLS on port 5986 with the certificate cloudbase-init made for this instance ("+logged+", logged on COM1)")
		default:
			r.pass(checkHTTPSKept, fmt.Sprintf("TLS on port 5986 with certificate %s (CN %q)", winrmsec.Thumbprint(d.HTTPSCert.Raw), d.HTTPSCert.Subject.CommonName))
		}
		return
	}
	if d.HTTPSCert != nil {
		r.fail(checkHTTPSAbsent, fmt.Sprintf("a TLS listener answers on port 5986 (certificate %s, CN %q) although the image is not meant to offer WinRM over HTTPS",
			winrmsec.Thumbprint(d.HTTPSCert.Raw), d.HTTPSCert.Subject.CommonName))
		return
	}
	r.pass(checkHTTPSAbsent, "no TLS listener on port 5986")
}

// buildThumbprint is the build certificate's thumbprint the manifest
// records, "" for a build over HTTP.
func (k *checker) buildThumbprint() string {
	if k.Build == nil {
		return ""
	}
	return k.Build.Thumbprint
}

// checkNoBuildWinRMLeft looks in the guest for the build's firewall rules
// and certificate.
func (k *checker) checkNoBuildWinRMLeft(ctx context.Context, g guest, r *Report) {
	found, checked, err := winrmsec.Leftovers(ctx, g.comm, k.buildThumbprint())
	switch {
	case len(found) > 0:
		r.fail(checkNoBuildWinRM, strings.Join(found, "; ")+" remain(s) (winbake-sysprep removes them before it generalizes)")
	case err != nil:
		r.fail(checkNoBuildWinRM, err.Error())
	default:
		r.pass(checkNoBuildWinRM, "none of: "+strings.Join(checked, ", "))
	}
}
