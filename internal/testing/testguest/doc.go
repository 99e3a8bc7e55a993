// Package testguest is winbake's stand-in Windows guest: the simulated
// Windows of package winsim behind the WinRM server of package wsman,
// wired together, with winbake-agent installed. It is what winbake's
// tests, and the winbake-guest program (internal/testing/cmd/winbake-guest, run inside a
// small Linux VM), talk to instead of Windows.
//
// # Wiring
//
// New creates a winsim.Machine and a wsman.Server for it:
//
//   - the Machine is the server's Host (WinRM commands run on it) and, as
//     a wsman.CreateFaulter, fails shell creation early in boot when
//     PowerOptions.EarlyCreateFault asks for it;
//   - the Server is the Machine's wsman.PowerControl: shutdowns, resets
//     and boots drive the listener (FIN or RST drops, refused or
//     blackholed while off, refused or 503 while booting) and forget the
//     shells;
//   - agent.Main is the Machine's Agent, and the agent's file is at
//     AgentPath (C:\ProgramData\winbake\winbake-agent.exe), so a WinRM
//     command running it runs winbake-agent's real logic on the simulated
//     registry, files, servicing stack and power;
//   - one account (Options.User, Options.Password; vagrant/vagrant by
//     default) is both the Windows user and the WinRM credential; NTLM
//     challenges carry the computer name.
//
// Start listens (Options.Addr, default 127.0.0.1:0; Options.TLSAddr for
// HTTPS); Close stops the server, then the machine, leaving the disk in
// Options.StateDir. Tests use StartForTest, which also routes what the
// stand-in does not understand, from either side, to t.Errorf: a command
// the stand-in cannot run fails the test instead of passing silently.
//
//	g := testguest.StartForTest(t, testguest.Options{
//		Packages: []winsim.Package{{FileName: "kb1.cab", Result: winsim.InstallsRebootRequired}},
//		Power:    winsim.PowerOptions{ShutdownDelay: 100 * time.Millisecond, BootTime: 300 * time.Millisecond},
//	})
//	host, port := g.HostPort()
//	user, password := g.Credentials()
//	// ... a masterzen client or Packer's communicator on host:port;
//	// g.Machine to set up files and reboot, g.Server to inject faults.
//
// ParseCatalog and LoadCatalog read a servicing catalog in JSON (Catalog);
// ParseWindows names a Windows release; both serve internal/testing/cmd/winbake-guest.
//
// # What the tests here prove
//
// That the joined guest behaves like Windows through real clients:
//
//   - TestCaptureReplay: every exchange recorded with real Windows
//     (embedded in package wsman/replay), replayed by it
//     against the whole guest, its cmd.exe and PowerShell producing the
//     output (Start-Sleep on a clock scaled as the replay scales time).
//   - masterzen (masterzen_test.go): commands, NTLM, HTTPS, 3 MiB of
//     output in arbitrary chunks, exit codes as unsigned 32-bit values
//     (DISM's 2148468766, wusa's 5), Receive timeouts natural and injected,
//     a reboot under a running command (FIN: 16001 and EOF; RST: 0 and a
//     reset), 503 while booting, the early-boot Create fault, refused or
//     blackholed while off, shells gone and files kept after a reboot.
//   - Packer's WinRM communicator (packer_test.go): RemoteCmd output and
//     exit status, Packer's connect and restart checks, the windows-restart
//     provisioner's sequence, winrmcp Upload (logged as the baseline an
//     update channel must beat: bytes/s and requests per MiB) and
//     Download, slow responses.
//   - winbake-agent over WinRM (agent_test.go): version, boot-time,
//     pending-reboot, install of catalog packages (0; 3010 with the
//     pending keys, restart, a new boot time, the keys cleared; not
//     applicable; the servicing stack first), parsed with the agent's own
//     result types.
//   - faults_test.go: injected drops and blackholes on real processes and
//     reboots or resets at arbitrary moments; its comment maps every fault
//     of winrm-protocol.md §12 to its tests here or in package wsman.
package testguest
