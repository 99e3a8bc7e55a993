package wsman

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// AuthMethods selects the HTTP authentication schemes the listener accepts.
type AuthMethods int

const (
	// AuthBasic is Basic authentication, credentials on every request
	// (Service/Auth/Basic=true with AllowUnencrypted=true).
	AuthBasic AuthMethods = 1 << iota
	// AuthNTLM is NTLM inside the Negotiate scheme, bound to the TCP
	// connection as Windows binds it.
	AuthNTLM
)

// AfterDone is what a Receive gets once the command's Done has been sent.
type AfterDone int

const (
	// AfterDoneInvalidSelectors answers the w:InvalidSelectors fault "command
	// identifier that does not exist" (what pypsrp sees).
	AfterDoneInvalidSelectors AfterDone = iota
	// AfterDoneExitZero answers Done again, with ExitCode 0 (masterzen's
	// TestCommandExitCode fixture: only the first Done has the real code).
	AfterDoneExitZero
)

// Options configures a Server. Zero values select Windows' defaults.
type Options struct {
	// Users maps user names to passwords. A request from anyone else gets
	// 401. User names match case-insensitively, with or without a
	// "DOMAIN\" prefix.
	Users map[string]string
	// Auth selects the schemes; zero means AuthBasic|AuthNTLM (Negotiate is
	// on by default on Windows and Packer setups enable Basic).
	Auth AuthMethods
	// RejectUnencrypted is Service/AllowUnencrypted=false, Windows'
	// default: on the HTTP listener every request that is not NTLM-sealed
	// (multipart/encrypted) gets 401, Basic and unsealed NTLM alike; the
	// empty POST completing an NTLM handshake is let through so sealing
	// can start. HTTPS is unaffected. Sealed requests are served whatever
	// this says, as on Windows.
	RejectUnencrypted bool
	// ComputerName is the NetBIOS name in NTLM challenges (default
	// "WINBAKE").
	ComputerName string
	// LogonRefused, when set, is asked once a user's password matched:
	// true refuses the logon with the same 401 as a wrong password, as
	// Windows refuses an account whose password must be changed first
	// (the logon fails with ERROR_PASSWORD_MUST_CHANGE; only an
	// interactive logon can change it).
	LogonRefused func(user string) bool

	// MaxTimeout caps the Receive long-poll (MaxTimeoutms, 60 s): the
	// effective timeout is min(OperationTimeout, MaxTimeout).
	MaxTimeout time.Duration
	// MaxEnvelopeSize is the server's MaxEnvelopeSizekb in bytes (default
	// 512000). Requests larger than this get the w:EncodingLimit fault;
	// Receive responses stay under min(MaxEnvelopeSize, the request's
	// w:MaxEnvelopeSize).
	MaxEnvelopeSize int
	// MaxShellsPerUser (default 30) and MaxConcurrentOperationsPerUser
	// (default 1500) are the quotas; 2008 R2 has 5 and 15. A command counts
	// as an operation until its shell is deleted, as on Windows, which is
	// why winrmcp opens a new shell every 15 commands.
	MaxShellsPerUser               int
	MaxConcurrentOperationsPerUser int
	// IdleTimeout is the shell idle timeout reported as rsp:IdleTimeOut when
	// the Create request names none (default 7200 s). Shells idle for longer
	// are deleted.
	IdleTimeout time.Duration

	// ReceiveAfterDone selects the answer to a Receive after Done.
	ReceiveAfterDone AfterDone
	// SelectorOnlyCreate answers Create with only x:ResourceCreated, as
	// Windows 7 / 2008 R2 with WMF 2.0 do (masterzen 2025 then has shell
	// ID "").
	SelectorOnlyCreate bool
	// ActivityID adds p:ActivityId to response headers, as Windows Server
	// 2012 R2 and later do.
	ActivityID bool

	// ReceiveGather is how long a Receive that found output keeps
	// collecting more before answering Running (default 100 ms); it answers
	// at once when the command completes or the envelope is full.
	ReceiveGather time.Duration
	// ChunkSize, when positive, caps the bytes in one rsp:Stream element, so
	// output is split at arbitrary byte boundaries (mid-line, inside UTF-8
	// sequences). Zero keeps each read of the process output whole.
	ChunkSize int
	// MaxQueuedOutput is how many output bytes may wait for a Receive
	// before the process is held back, like a full pipe (default 1 MiB).
	MaxQueuedOutput int
	// KeepAliveRequests, when positive, closes a connection after that many
	// requests (Connection: close), forcing reconnects and NTLM
	// re-handshakes.
	KeepAliveRequests int

	// Machine is the f:WSManFault Machine attribute; default: the host the
	// client addressed (the Host header), as Windows reports it.
	Machine string
	// TLSHosts are extra DNS names or IP addresses for the self-signed
	// certificate of ListenTLS (127.0.0.1, ::1 and localhost are always in).
	TLSHosts []string

	// Now is the clock for shell idle timeouts (default time.Now).
	Now func() time.Time
	// Failf is called for anything the server does not understand or that
	// breaks the contract: unknown Action, unparseable envelope, unknown
	// resource URI, unknown option or header, a Host error that is not a
	// *CommandFault. Tests pass t.Errorf. Default: log.Printf.
	Failf func(format string, args ...any)
	// Trace, when set, is called after every request with what happened.
	Trace func(Exchange)
}

// Exchange is one request and the server's answer, for Options.Trace.
type Exchange struct {
	Op     Op
	Action string
	User   string
	// Status is the HTTP status sent; 0 when the connection was dropped or
	// the request blackholed.
	Status   int
	Request  []byte
	Response []byte
	// Sealed: the request came NTLM-sealed (multipart/encrypted) and the
	// answer went back sealed; Request and Response are the plaintext.
	Sealed bool
	// ContextSetup: the empty authenticated POST that completes an NTLM
	// handshake before sealed messages, answered 200 with no body.
	ContextSetup bool
}

func (o Options) withDefaults() Options {
	if o.Auth == 0 {
		o.Auth = AuthBasic | AuthNTLM
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = 60 * time.Second
	}
	if o.MaxEnvelopeSize <= 0 {
		o.MaxEnvelopeSize = 512000
	}
	if o.MaxShellsPerUser <= 0 {
		o.MaxShellsPerUser = 30
	}
	if o.MaxConcurrentOperationsPerUser <= 0 {
		o.MaxConcurrentOperationsPerUser = 1500
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 7200 * time.Second
	}
	if o.ReceiveGather <= 0 {
		o.ReceiveGather = 100 * time.Millisecond
	}
	if o.MaxQueuedOutput <= 0 {
		o.MaxQueuedOutput = 1 << 20
	}
	if o.ComputerName == "" {
		o.ComputerName = "WINBAKE"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Failf == nil {
		o.Failf = func(format string, args ...any) { log.Printf("wsman: "+format, args...) }
	}
	return o
}

// Server is the stand-in WinRM service: the WS-Management shell resource
// over HTTP (and optionally HTTPS), driven by a Host.
type Server struct {
	host Host
	opts Options

	tlsConfig *tls.Config
	certPEM   []byte

	srv *http.Server

	// procCtx is passed to Host.Start; it ends with Close.
	procCtx    context.Context
	procCancel context.CancelFunc

	mu           sync.Mutex
	state        ListenerState
	stateChanged chan struct{}
	listeners    []*listenerSlot
	conns        map[*trackedConn]struct{}
	shells       map[string]*shell
	injections   []*Injection
	counts       map[Op]int
	closed       bool
	closedCh     chan struct{}

	wg     sync.WaitGroup // request handlers and Serve loops
	procWG sync.WaitGroup // output pumps, exit waiters, stdin writers
	failed atomic.Int64

	// auth and rejectUnencrypted are Options.Auth and
	// Options.RejectUnencrypted as SetAuthentication last set them.
	auth              atomic.Int64
	rejectUnencrypted atomic.Bool

	keepAlive atomic.Int64 // requests per connection, 0: unlimited
	latency   atomic.Int64 // added to every request
	jitter    atomic.Int64 // random extra latency, up to this
}

type listenerSlot struct {
	addr     string // resolved address, reused when the listener reopens
	tls      bool
	listener net.Listener // nil while closed
}

// New returns a server for host. It listens once Listen or ListenTLS is
// called.
func New(host Host, opts Options) *Server {
	s := &Server{
		host:         host,
		opts:         opts.withDefaults(),
		stateChanged: make(chan struct{}),
		conns:        map[*trackedConn]struct{}{},
		shells:       map[string]*shell{},
		counts:       map[Op]int{},
		closedCh:     make(chan struct{}),
	}
	s.procCtx, s.procCancel = context.WithCancel(context.Background())
	s.keepAlive.Store(int64(s.opts.KeepAliveRequests))
	s.auth.Store(int64(s.opts.Auth))
	s.rejectUnencrypted.Store(s.opts.RejectUnencrypted)
	s.srv = &http.Server{
		Handler:      http.HandlerFunc(s.serveHTTP),
		ErrorLog:     log.New(io.Discard, "", 0),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if t, ok := c.(*trackedConn); ok {
				return context.WithValue(ctx, connKey{}, t)
			}
			return ctx
		},
	}
	return s
}

type connKey struct{}

func connFrom(ctx context.Context) *trackedConn {
	c, _ := ctx.Value(connKey{}).(*trackedConn)
	return c
}

func (s *Server) failf(format string, args ...any) {
	s.failed.Add(1)
	s.opts.Failf(format, args...)
}

// Listen serves WinRM over HTTP on addr (e.g. "127.0.0.1:0" or ":5985").
func (s *Server) Listen(addr string) error { return s.listen(addr, false) }

// ListenTLS serves WinRM over HTTPS on addr with a self-signed certificate
// (see CertificatePEM), like a 5986 listener.
func (s *Server) ListenTLS(addr string) error {
	if err := s.ensureCert(); err != nil {
		return err
	}
	return s.listen(addr, true)
}

func (s *Server) listen(addr string, useTLS bool) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return errors.New("wsman: server closed")
	}
	slot := &listenerSlot{addr: l.Addr().String(), tls: useTLS}
	s.listeners = append(s.listeners, slot)
	if s.state == ListenerUp || s.state == ListenerBlackhole || s.state == ListenerUnavailable {
		s.startSlotLocked(slot, l)
	} else {
		_ = l.Close()
	}
	s.mu.Unlock()
	return nil
}

// startSlotLocked serves on l (a fresh listener for slot); s.mu held.
func (s *Server) startSlotLocked(slot *listenerSlot, l net.Listener) {
	var tl net.Listener = &trackingListener{Listener: l, s: s, slot: slot}
	if slot.tls {
		tl = tls.NewListener(tl, s.tlsConfig)
	}
	slot.listener = l
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(tl)
	}()
}

// Addr is the HTTP listener's address ("" if none).
func (s *Server) Addr() string { return s.slotAddr(false) }

// TLSAddr is the HTTPS listener's address ("" if none).
func (s *Server) TLSAddr() string { return s.slotAddr(true) }

func (s *Server) slotAddr(useTLS bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.listeners {
		if sl.tls == useTLS {
			return sl.addr
		}
	}
	return ""
}

// Failures is how many times Failf has been called.
func (s *Server) Failures() int { return int(s.failed.Load()) }

// RequestCount is the number of requests of the operation the server has
// parsed (OpAny: all of them, OpUnknown: unclassifiable ones).
func (s *Server) RequestCount(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == OpAny {
		n := 0
		for _, c := range s.counts {
			n += c
		}
		return n
	}
	return s.counts[op]
}

// ShellCount is the number of open shells.
func (s *Server) ShellCount() int {
	s.expire()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shells)
}

// Close stops the listeners, closes every connection, terminates running
// processes and waits for the server's goroutines. A Host whose processes
// do not end after Terminate is reported through Failf after 10 s.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closedCh)
	for _, sl := range s.listeners {
		if sl.listener != nil {
			_ = sl.listener.Close()
			sl.listener = nil
		}
	}
	for c := range s.conns {
		c.closeRaw(true)
		delete(s.conns, c)
	}
	shells := s.shells
	s.shells = map[string]*shell{}
	s.broadcastLocked()
	s.mu.Unlock()

	_ = s.srv.Close()
	for _, sh := range shells {
		s.dropShell(sh)
	}
	s.procCancel()
	if !waitTimeout(&s.wg, 10*time.Second) {
		s.failf("wsman: request handlers still running 10s after Close")
	}
	if !waitTimeout(&s.procWG, 10*time.Second) {
		s.failf("wsman: Host processes still producing output or blocking stdin 10s after Close (Terminate must end them)")
	}
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// goProc runs f as a process-side goroutine accounted for by Close.
func (s *Server) goProc(f func()) {
	s.procWG.Add(1)
	go func() {
		defer s.procWG.Done()
		f()
	}()
}

// broadcastLocked wakes everything waiting on a state change; s.mu held.
func (s *Server) broadcastLocked() {
	close(s.stateChanged)
	s.stateChanged = make(chan struct{})
}

// SetListenerState implements PowerControl.
//
//   - ListenerUp reopens closed listeners on their addresses; connections
//     from a blackholed period are reset (the machine behind them rebooted).
//   - ListenerDropFIN / ListenerDropRST close the listeners and every
//     connection with FIN / RST, in-flight requests included.
//   - ListenerRefused closes the listeners and resets open connections.
//   - ListenerBlackhole keeps accepting but reads nothing and answers
//     nothing, pending requests included.
//   - ListenerUnavailable answers every request, pending ones included,
//     with HTTP.sys's 503 page.
func (s *Server) SetListenerState(st ListenerState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	prev := s.state
	s.state = st
	switch st {
	case ListenerUp, ListenerBlackhole, ListenerUnavailable:
		for _, sl := range s.listeners {
			if sl.listener == nil {
				l, err := net.Listen("tcp", sl.addr)
				if err != nil {
					s.failf("wsman: cannot listen again on %s: %v", sl.addr, err)
					continue
				}
				s.startSlotLocked(sl, l)
			}
		}
		if prev == ListenerBlackhole && st != ListenerBlackhole {
			for c := range s.conns {
				c.closeRaw(true)
				delete(s.conns, c)
			}
		}
	case ListenerDropFIN, ListenerDropRST, ListenerRefused:
		for _, sl := range s.listeners {
			if sl.listener != nil {
				_ = sl.listener.Close()
				sl.listener = nil
			}
		}
		for c := range s.conns {
			c.closeRaw(st != ListenerDropFIN)
			delete(s.conns, c)
		}
	default:
		s.failf("wsman: unknown ListenerState %d", st)
	}
	s.broadcastLocked()
}

// DiscardShells implements PowerControl: every shell and command is
// forgotten, running processes are terminated, and later requests naming
// them get the InvalidSelectors fault.
func (s *Server) DiscardShells() {
	s.mu.Lock()
	shells := s.shells
	s.shells = map[string]*shell{}
	s.mu.Unlock()
	for _, sh := range shells {
		s.dropShell(sh)
	}
}

// dropShell ends a shell already removed from s.shells.
func (s *Server) dropShell(sh *shell) {
	s.mu.Lock()
	select {
	case <-sh.gone:
	default:
		close(sh.gone)
	}
	cmds := sh.order
	s.mu.Unlock()
	for _, c := range cmds {
		c.discard()
	}
}

var _ PowerControl = (*Server)(nil)

// trackingListener records accepted connections so they can be dropped.
type trackingListener struct {
	net.Listener
	s    *Server
	slot *listenerSlot
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s, slot: l.slot, closedCh: make(chan struct{})}
	l.s.mu.Lock()
	if l.s.closed {
		l.s.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.s.conns[tc] = struct{}{}
	l.s.mu.Unlock()
	return tc, nil
}

// trackedConn is a server-side TCP connection with the state Windows binds
// to it (NTLM authentication, request count).
type trackedConn struct {
	net.Conn
	s        *Server
	slot     *listenerSlot // the listener that accepted it
	once     sync.Once
	closedCh chan struct{}

	mu        sync.Mutex
	user      string // NTLM-authenticated user
	challenge []byte // pending NTLM server challenge
	requests  int
	// The pending handshake's NEGOTIATE and CHALLENGE messages (for the
	// MIC) and the security context it established, for sealed messages.
	negotiateMsg, challengeMsg []byte
	session                    *ntlmSession
}

// Read blocks while the listener is blackholed: nothing sent is ever read
// (not even a TLS handshake).
func (c *trackedConn) Read(p []byte) (int, error) {
	for {
		c.s.mu.Lock()
		st, ch := c.s.state, c.s.stateChanged
		c.s.mu.Unlock()
		if st != ListenerBlackhole {
			break
		}
		select {
		case <-ch:
		case <-c.closedCh:
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.drop(false)
	return nil
}

// drop closes the connection, with RST (SO_LINGER 0) when rst is set, and
// forgets it; s.mu must not be held.
func (c *trackedConn) drop(rst bool) {
	c.closeRaw(rst)
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
}

// closeRaw closes the socket once; it does not touch s.mu.
func (c *trackedConn) closeRaw(rst bool) {
	c.once.Do(func() {
		if rst {
			if tcp, ok := c.Conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
		}
		_ = c.Conn.Close()
		close(c.closedCh)
	})
}
