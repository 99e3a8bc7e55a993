package winrmsec

import (
	"context"
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// Key generation takes a while (3072-bit RSA): one certificate for the
// listener and one impostor, shared by the tests.
var (
	certsOnce    sync.Once
	listenerCert *BuildCertificate
	impostorCert *BuildCertificate
	certsErr     error
)

func certs(t *testing.T) (*BuildCertificate, *BuildCertificate) {
	t.Helper()
	certsOnce.Do(func() {
		if listenerCert, certsErr = NewBuildCertificate(); certsErr == nil {
			impostorCert, certsErr = NewBuildCertificate()
		}
	})
	if certsErr != nil {
		t.Fatal(certsErr)
	}
	return listenerCert, impostorCert
}

func TestBuildCertificate(t *testing.T) {
	c, other := certs(t)
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if cert.IsCA || cert.Subject.CommonName != CertificateCommonName || len(cert.DNSNames) != 1 || cert.DNSNames[0] != CertificateDNSName ||
		len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("certificate: CA %t, CN %q, DNS %v, EKU %v", cert.IsCA, cert.Subject.CommonName, cert.DNSNames, cert.ExtKeyUsage)
	}
	if len(c.Thumbprint()) != 40 || strings.ToUpper(c.Thumbprint()) != c.Thumbprint() || c.Thumbprint() == other.Thumbprint() {
		t.Errorf("thumbprints %s and %s", c.Thumbprint(), other.Thumbprint())
	}
	parsed, err := ParseCertificatePEM(c.PEM())
	if err != nil || Thumbprint(parsed.Raw) != c.Thumbprint() {
		t.Errorf("PEM round trip: %v", err)
	}
	rec := BuildWinRM{Transport: TransportHTTPS, Port: HTTPSPort, Certificate: c.PEM(), Thumbprint: c.Thumbprint(), FirewallRule: FirewallRuleHTTPS}
	if err := rec.Check(); err != nil {
		t.Errorf("manifest record: %v", err)
	}
	rec.Thumbprint = other.Thumbprint()
	if err := rec.Check(); err == nil {
		t.Error("a record whose thumbprint is another certificate's passes")
	}
}

// The PKCS#12 file decodes with its password only, to the same key and
// certificate, in both encodings (3DES before build 17763, AES after).
func TestPFX(t *testing.T) {
	c, _ := certs(t)
	pw, err := NewPFXPassword()
	if err != nil || len(pw) != 32 {
		t.Fatalf("password %q: %v", pw, err)
	}
	for _, build := range []int{14393, 20348} {
		pfx, err := c.PFX(pw, build)
		if err != nil {
			t.Fatal(err)
		}
		key, cert, err := pkcs12.Decode(pfx, pw)
		if err != nil {
			t.Fatalf("build %d: %v", build, err)
		}
		if Thumbprint(cert.Raw) != c.Thumbprint() || key == nil {
			t.Errorf("build %d: decoded another certificate", build)
		}
		if _, _, err := pkcs12.Decode(pfx, pw+"0"); err == nil {
			t.Errorf("build %d: decodes with a wrong password", build)
		}
	}
}

func guestWithCert(t *testing.T, cert *BuildCertificate, server wsman.Options) *testguest.Guest {
	t.Helper()
	tc := cert.TLSCertificate()
	return testguest.StartForTest(t, testguest.Options{TLSAddr: "127.0.0.1:0", TLSCertificate: &tc, Server: server})
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func runEcho(t *testing.T, host string, port int, user, password string, insecure bool, decorator func() winrm.Transporter) (string, error) {
	t.Helper()
	params := *winrm.DefaultParameters
	params.TransportDecorator = decorator
	ep := &winrm.Endpoint{Host: host, Port: port, HTTPS: true, Insecure: insecure, Timeout: 30 * time.Second}
	client, err := winrm.NewClientWithParameters(ep, user, password, &params)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, code, err := client.RunCmdWithContext(ctx, "echo pinned")
	if err == nil && code != 0 {
		t.Errorf("echo exited with %d", code)
	}
	return out, err
}

// The pinned transport logs on (Basic, and NTLM) to the listener holding
// its certificate, and refuses a listener with another certificate for the
// very same name, even when the caller asks for no verification.
func TestPinnedTransport(t *testing.T) {
	c, impostor := certs(t)
	g := guestWithCert(t, c, wsman.Options{Auth: wsman.AuthBasic | wsman.AuthNTLM, RejectUnencrypted: true})
	host, port := hostPort(t, g.TLSAddr())
	user, pw := g.Credentials()
	for _, ntlm := range []bool{false, true} {
		out, err := runEcho(t, host, port, user, pw, false, PinnedTransport(c.PEM(), ntlm, true))
		if err != nil || !strings.Contains(out, "pinned") {
			t.Errorf("ntlm %t: %q %v", ntlm, out, err)
		}
	}

	ig := guestWithCert(t, impostor, wsman.Options{Auth: wsman.AuthBasic})
	ihost, iport := hostPort(t, ig.TLSAddr())
	for _, insecure := range []bool{false, true} {
		_, err := runEcho(t, ihost, iport, user, pw, insecure, PinnedTransport(c.PEM(), false, true))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("insecure %t: the impostor's listener was accepted (%v)", insecure, err)
		}
	}
	if n := ig.Server.RequestCount(wsman.OpAny); n != 0 {
		t.Errorf("the impostor received %d WinRM requests: credentials went to it", n)
	}

	// Plain HTTP is never spoken.
	params := *winrm.DefaultParameters
	params.TransportDecorator = PinnedTransport(c.PEM(), false, true)
	if _, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: host, Port: port}, user, pw, &params); err == nil || !strings.Contains(err.Error(), "HTTPS only") {
		t.Errorf("an HTTP endpoint: %v", err)
	}
}

// Windows' defaults on HTTP (Basic off or AllowUnencrypted off) refuse a
// Basic logon and unsealed NTLM with 401 and accept sealed NTLM; with the
// build's HTTP settings Basic gets in.
func TestProbes(t *testing.T) {
	ctx := context.Background()
	closed := testguest.StartForTest(t, testguest.Options{Server: wsman.Options{Auth: wsman.AuthNTLM, RejectUnencrypted: true}})
	host, port := closed.HostPort()
	user, pw := closed.Credentials()
	if l := ProbeHTTPLogon(ctx, host, port, user, pw, false); !l.Refused || l.Accepted {
		t.Errorf("Basic on a closed listener: %s", l)
	}
	if l := ProbeHTTPLogon(ctx, host, port, user, pw, true); !l.Refused {
		t.Errorf("unsealed NTLM on a closed listener: %s", l)
	}
	params := *winrm.DefaultParameters
	params.TransportDecorator = SealedNTLMTransport(user, pw)
	client, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: host, Port: port}, user, pw, &params)
	if err != nil {
		t.Fatal(err)
	}
	out, _, code, err := client.RunCmdWithContext(ctx, "echo sealed")
	if err != nil || code != 0 || !strings.Contains(out, "sealed") {
		t.Errorf("sealed NTLM: %q %d %v", out, code, err)
	}

	open := testguest.StartForTest(t, testguest.Options{Server: wsman.Options{Auth: wsman.AuthBasic | wsman.AuthNTLM}})
	host, port = open.HostPort()
	if l := ProbeHTTPLogon(ctx, host, port, user, pw, false); !l.Accepted {
		t.Errorf("Basic on the build's listener: %s", l)
	}

	// Nothing listening: neither accepted nor refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	h, p := hostPort(t, l.Addr().String())
	l.Close()
	if r := ProbeHTTPLogon(ctx, h, p, user, pw, false); r.Accepted || r.Refused || r.Err == nil {
		t.Errorf("no listener: %s", r)
	}
	if _, err := ProbeTLS(ctx, h, p); err == nil {
		t.Error("ProbeTLS found a TLS server where none listens")
	}
}

func TestProbeTLS(t *testing.T) {
	c, _ := certs(t)
	g := guestWithCert(t, c, wsman.Options{Auth: wsman.AuthBasic})
	host, port := hostPort(t, g.TLSAddr())
	cert, err := ProbeTLS(context.Background(), host, port)
	if err != nil || Thumbprint(cert.Raw) != c.Thumbprint() {
		t.Errorf("ProbeTLS: %v", err)
	}
}
