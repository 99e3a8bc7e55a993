// Package winrmsec is what winbake's components share about how WinRM is
// secured during a build and left in an image: the per-build certificate
// of the HTTPS listener and the transport that accepts only it, the record
// of the build's WinRM in the manifest, the names of what the build adds to
// Windows, and probes that tell from the wire whether a WinRM listener
// refuses what Windows refuses by default.
//
// # The build's WinRM
//
// Guests reached through QEMU's port forward on 127.0.0.1 keep WinRM over
// HTTP with Basic authentication: the traffic never leaves the host. Every
// other guest (a bridge, a libvirt network, a remote hypervisor) is reached
// over HTTPS on 5986 with a certificate winbake makes for the build
// (NewBuildCertificate): a fresh RSA key, a self-signed certificate that
// cannot sign others, delivered as a PKCS#12 file on the answer medium and
// imported, non-exportable, by the first logon. The communicator trusts
// that certificate and nothing else (PinnedTransport), whatever
// winrm_insecure says.
//
// # Windows' defaults
//
// The WinRM service settings Windows ships with ("WinRM Service Default
// Configuration Settings" in Microsoft's "Installation and configuration
// for Windows Remote Management", MicrosoftDocs/win32
// desktop-src/WinRM/installation-and-configuration-for-windows-remote-management.md):
// AllowUnencrypted false; Auth: Basic false, Kerberos true, Negotiate true,
// Certificate false, CredSSP false, CbtHardeningLevel Relaxed. On Windows
// Server the service runs and listens on HTTP port 5985, opened in the
// firewall ("Configure remote Management in Server Manager",
// MicrosoftDocs/windowsserverdocs
// WindowsServerDocs/administration/server-manager/configure-remote-management-in-server-manager.md:
// "remote management is enabled by default"; the listener on 5985, the port
// enabled in Windows Firewall, Kerberos and Negotiate), through the
// "Windows Remote Management (HTTP-In)" rules: unrestricted on domain and
// private networks, the local subnet only on public ones (Enable-PSRemoting,
// MicrosoftDocs/PowerShell-Docs reference/5.1/Microsoft.PowerShell.Core/Enable-PSRemoting.md).
// With those settings a Basic logon or an unencrypted message over HTTP is
// refused; only Negotiate (NTLM or Kerberos) with message encryption, or
// HTTPS, gets in.
package winrmsec
