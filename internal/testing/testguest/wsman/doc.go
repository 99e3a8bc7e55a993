// Package wsman is the WinRM service of winbake's stand-in Windows guest: a
// WS-Management server for the cmd shell resource
// (http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd) that
// behaves like Windows where winbake's client stack can tell, so winbake is
// tested without Windows. It is test-support code but an ordinary package:
// it also runs as a standalone binary inside a small VM.
//
// # Contract
//
// host.go is the contract with the simulated Windows (package winsim): the
// server turns Command requests into Host.Start calls (CommandRequest
// carries the shell's WINRS_* options, environment, working directory and
// user), streams the Process's stdout and stderr back through Receive,
// feeds Send data to its stdin and maps Signal to Terminate. The simulated
// machine drives the listener through PowerControl (SetListenerState,
// DiscardShells) across shutdowns and boots. A Host that also implements
// CreateFaulter (an additive, optional part of the contract) can fail
// Create requests, as Windows does early in boot. A Process that also
// implements OrderedOutput (additive and optional too) has its output read
// through it, so stdout and stderr are received in the order the process
// wrote them; two separate readers may swap writes that follow each other
// closely. Host.Start gets a context
// that ends when the Server is closed; Close terminates every running
// process and waits for its output to reach EOF.
//
// # What it is held to
//
// Three sources, each with tests in this package:
//
//   - Recorded exchanges with real Windows (replay/captures, Windows 2008
//     R2 and 2016, from the pypsrp test suite). TestCaptureReplay
//     (the harness is package wsman/replay, which package testguest uses to
//     replay them against the complete stand-in guest) sends every recorded
//     request, in order, with the IDs this server chose
//     substituted and time scaled (1 s = 100 ms for OperationTimeout and
//     Start-Sleep), and compares each response with the recorded one: HTTP
//     status, Action, element tree by namespace URI and order, attributes,
//     fault Code/Subcode/WSManFault Code and texts (trailing spaces
//     included), stream layout (runs of stdout and stderr, End markers,
//     CommandState, ExitCode) and decoded output. Only IDs, timestamps,
//     addresses, Owner/ClientIP/Machine, durations and chunk boundaries may
//     differ. The captures are embedded in package replay.
//   - The list of WinRM behaviours real Windows shows under faults (drops,
//     reboots, timeouts, 503 while booting), each with its test.
//   - The client winbake and Packer use, github.com/masterzen/winrm
//     v0.0.0-20250927112105-5f8e6c707321 (with go-ntlmssp for NTLM), driven
//     against the server: output, exit codes, timeouts, drops, auth,
//     quotas, power states.
//
// # Protocol
//
// Requests are parsed with package soapxml, by namespace URI, never by
// prefix; CDATA is text.
// Responses are laid out as Windows lays them out: Action + "Response", a
// fresh uppercase uuid MessageID, optional p:ActivityId (Options.ActivityID,
// Server 2012 R2 and later), To anonymous, RelatesTo verbatim,
// xml:lang="en-US", Content-Type application/soap+xml;charset=UTF-8 and
// Server Microsoft-HTTPAPI/2.0.
//
//   - Create answers x:ResourceCreated with the ShellId selector and
//     rsp:Shell (ShellId, ResourceUri, Owner, ClientIP, Environment,
//     WorkingDirectory, IdleTimeOut, streams, ShellRunTime,
//     ShellInactivity); Options.SelectorOnlyCreate answers the selector form
//     only, as WMF 2.0 does. IDs are uppercase GUIDs. WINRS_NOPROFILE and
//     WINRS_CODEPAGE are honoured; rsp:IdleTimeOut, rsp:Lifetime and rsp:Name
//     are accepted as in the extra_opts capture.
//   - Command calls Host.Start; a *CommandFault becomes the w:InternalError
//     fault of the cmd plugin with its code and message; a command line over
//     32767 UTF-16 units faults 2147942606 without reaching the Host.
//   - Receive is a long poll: it answers as soon as output exists (after
//     Options.ReceiveGather, 100 ms, to collect what follows, or at once on
//     completion or a full envelope) with State Running; with no output
//     before min(OperationTimeout, Options.MaxTimeout) it answers HTTP 500
//     w:TimedOut with Windows' exact text. Each read of the process output
//     is a chunk, split further at Options.ChunkSize and at the envelope
//     budget, base64 per chunk, stdout and stderr in production order, every
//     response under min(MaxEnvelopeSize of the request, of the server).
//     Completion sends End="true" on both streams, CommandState Done and
//     ExitCode as an unsigned decimal. A Receive after Done gets
//     Options.ReceiveAfterDone.
//   - Send writes stdin (End="true" closes it), Signal terminate, ctrl_c or
//     ctrl_break terminates the process, Delete ends the shell.
//
// Faults are always HTTP 500. A Receive is never answered 200 with an empty
// or invalid body (that panics the Go client in a goroutine): when it
// cannot be answered the connection is closed or reset. Anything the
// server does not understand (unknown Action, header, option, resource URI
// or body element, unparseable envelope, a Host error that is not a
// *CommandFault) is reported through Options.Failf (tests pass t.Errorf)
// and answered with a fault; nothing is silently accepted.
//
// Fault catalogue (f:WSManFault Code):
//
//	w:TimedOut 2150858793            Receive long poll expired (capture)
//	w:InvalidSelectors 2150858843    unknown or deleted ShellId, second Delete,
//	                                 after DiscardShells; unknown CommandId (capture)
//	w:InvalidParameter 87            missing CommandId, empty command (capture)
//	w:InternalError <code>           *CommandFault, e.g. 2147942402 (capture)
//	w:InternalError 2147942606       command line too long
//	w:InternalError 2147943418       EffectRegistryKeyDeleted (early boot Create)
//	w:QuotaLimit 2150859173          MaxShellsPerUser (default 30)
//	w:QuotaLimit 2150859174          MaxConcurrentOperationsPerUser (default 1500);
//	                                 a command counts until its shell is deleted
//	a:ActionNotSupported 2150858771  unknown Action
//	a:DestinationUnreachable 2150858770  unknown resource URI
//	w:SchemaValidationError 2150858817   unparseable or unexpected envelope
//	w:InvalidOptions 2150858809      unknown option or value
//	s:MustUnderstand 2150858768      unknown mustUnderstand header
//	a:MessageInformationHeaderRequired 2150858769  no MessageID or Action
//	w:EncodingLimit 2150858805       MaxEnvelopeSize below 8192, request too large
//
// The first four come from the captures. The quota texts follow a Windows
// fault quoted in pywinrm's tests; the last seven use codes and texts from
// Windows' WS-Management error catalogue and have no recorded exchange:
// trust their codes more than their wording.
//
// # Authentication
//
// Options.Users and Options.Auth: Basic (credentials on every request) and
// NTLM inside Negotiate, bound to the TCP connection as Windows binds it:
// the handshake (anonymous → 401 Negotiate, negotiate → 401 challenge,
// authenticate → served) runs per connection, later requests on it carry no
// Authorization, and only the authenticated leg has side effects. 401s
// have no body and no Content-Type, and WWW-Authenticate Negotiate and/or
// Basic realm="WSMAN".
//
// NTLM message encryption ([MS-WSMV] 2.2.9.1.1), what pywinrm, Ansible
// and masterzen's winrm.NewEncryption("ntlm") use over HTTP by default:
// the challenge grants the SIGN, SEAL and KEY_EXCH the client asks for; the
// AUTHENTICATE message yields the exported session key (its MIC checked
// when announced) and the connection's security context, NTLMv2 session
// security of [MS-NLMP] 3.4 (ntlmseal.go); an empty POST carrying the
// AUTHENTICATE gets 200 with no body (the context is complete), an empty
// POST without Authorization gets 401 (a fresh handshake); a
// multipart/encrypted request is unsealed, its signature and sequence
// number verified, served, and answered sealed, faults included
// (encrypted.go). A sealed message that does not verify or is malformed
// gets 400 and a closed connection, as on Windows; CredSSP and Kerberos
// sealing are not modelled (reported). Options.RejectUnencrypted
// (AllowUnencrypted=false, Windows' default) answers 401 on the HTTP
// listener to everything but sealed NTLM and its handshake; without it,
// unsealed requests are served too (AllowUnencrypted=true). ListenTLS adds
// an HTTPS listener with a self-signed certificate (CertificatePEM).
//
// # Power states and fault injection
//
// SetListenerState: Up; DropFIN / DropRST close every connection, pending
// Receives included, with FIN (masterzen: exit code 16001 and EOF) or RST
// (exit code 0 and "connection reset by peer") and refuse new ones; Refused
// closes the listeners (connection refused) and resets open connections;
// Blackhole accepts and reads nothing, holding pending requests; leaving it
// resets the connections of the dead period; Unavailable answers every
// request, pending ones included, with HTTP.sys's 503 text/html page
// ("HTTP Error 503. The service is unavailable."). Listeners reopen on
// their addresses. DiscardShells forgets every shell and command,
// terminating processes, as a reboot does.
//
// Inject applies an Effect to the next matching requests (after
// authentication): drop by FIN or RST, blackhole, the timeout fault, 503,
// the early-boot Create fault, or only a Delay; AfterHandling performs the
// request first and loses the answer. SetLatency adds latency and jitter to
// every request; SetKeepAliveRequests (Options.KeepAliveRequests) closes
// connections after N requests. Options.Trace sees every exchange.
//
// # masterzen notes
//
// Found while testing against masterzen 5f8e6c707321, and relevant to
// winbake's own client code: its HTTP Post returns a non-200 SOAP body as a
// response with a nil error (the deferred rewrite of the error does not
// reach the unnamed results). A fault on Create or Command therefore
// surfaces as ExecuteCommandError "received error response" with the fault
// in Body; a fault on Signal or Delete is invisible; and any fault on
// Receive, not only w:TimedOut, makes the client Receive again, forever if
// the fault persists. Only transport errors end a command early (EOF: exit
// code 16001).
package wsman
