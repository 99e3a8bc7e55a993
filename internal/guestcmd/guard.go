package guestcmd

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/masterzen/winrm"
)

// DefaultResponseTimeout bounds the wait for the answer to one WinRM
// request.
// Windows answers a Receive within MaxTimeoutms (60 s by default) even
// when the command printed nothing (the w:TimedOut fault; MS-WSMV
// 3.1.4.14), and every other request at once: a request unanswered for
// twice that is lost (a guest that froze, a connection that went dark), and
// masterzen/winrm sends the Receive again.
const DefaultResponseTimeout = 2 * time.Minute

// abortedRequestTimeout bounds each request the WinRM client sends after an
// abort: the Signal that stops the command and the Delete of its shell.
const abortedRequestTimeout = 5 * time.Second

// Transport is the network side of a Guard: it dials the WinRM
// connections, gives every request ResponseTimeout for its answer, and can
// close the connections of the requests in flight.
type Transport struct {
	// ResponseTimeout is the wait for each answer (DefaultResponseTimeout;
	// tests shorten it). Set it before Decorator is used.
	ResponseTimeout time.Duration

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// aborting counts aborted commands still ending; while it is not
	// zero, new connections carry abortedRequestTimeout as deadline.
	aborting int
	dialer   net.Dialer
}

// NewTransport returns a Transport dialling with a 30 s connect timeout,
// as masterzen/winrm's own transport does.
func NewTransport() *Transport {
	return &Transport{conns: map[net.Conn]struct{}{}, dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		ResponseTimeout: DefaultResponseTimeout}
}

// Decorator returns the winrm.Transporter factory for Packer's
// communicator.Config.WinRMTransportDecorator: masterzen/winrm's own
// transport (NTLM when ntlm is set, as winrm_use_ntlm asks) over this
// Transport's connections, with ResponseTimeout as the wait for each
// answer.
func (t *Transport) Decorator(ntlm bool) func() winrm.Transporter {
	return t.DecoratorWith(func(dial func(network, addr string) (net.Conn, error)) winrm.Transporter {
		if ntlm {
			return winrm.NewClientNTLMWithDial(dial)
		}
		return winrm.NewClientWithDial(dial)
	})
}

// DecoratorWith is Decorator for a transporter newInner makes over this
// Transport's connections: winbake's own, which pins the build's
// certificate or seals NTLM messages (internal/winrmsec). newInner must
// connect through dial only and honour Endpoint.Timeout as the wait for
// each answer.
func (t *Transport) DecoratorWith(newInner func(dial func(network, addr string) (net.Conn, error)) winrm.Transporter) func() winrm.Transporter {
	return func() winrm.Transporter {
		return &boundedTransporter{Transporter: newInner(t.dial), timeout: t.ResponseTimeout}
	}
}

// boundedTransporter sets the answer timeout Packer leaves at 0 (none).
type boundedTransporter struct {
	winrm.Transporter
	timeout time.Duration
}

func (b *boundedTransporter) Transport(e *winrm.Endpoint) error {
	bounded := *e
	bounded.Timeout = b.timeout
	return b.Transporter.Transport(&bounded)
}

func (t *Transport) dial(network, addr string) (net.Conn, error) {
	c, err := t.dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	t.conns[tc] = struct{}{}
	if t.aborting > 0 {
		tc.short = true
		_ = c.SetDeadline(time.Now().Add(abortedRequestTimeout))
	}
	t.mu.Unlock()
	return tc, nil
}

// abort closes every connection, which ends the requests in flight at
// once, and gives new ones a short deadline until done is called.
func (t *Transport) abort() (done func()) {
	t.mu.Lock()
	t.aborting++
	conns := t.conns
	t.conns = map[net.Conn]struct{}{}
	t.mu.Unlock()
	for c := range conns {
		_ = c.(*trackedConn).Conn.Close()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.aborting--
			var short []*trackedConn
			if t.aborting == 0 {
				for c := range t.conns {
					if tc := c.(*trackedConn); tc.short {
						short = append(short, tc)
					}
				}
			}
			t.mu.Unlock()
			// Their deadline would cut the next commands' requests short.
			for _, c := range short {
				_ = c.Close()
			}
		})
	}
}

// OpenConnections is the number of connections not closed yet.
func (t *Transport) OpenConnections() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

type trackedConn struct {
	net.Conn
	t    *Transport
	once sync.Once
	// short: dialled while aborting, with abortedRequestTimeout as
	// deadline.
	short bool
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

// Guard is a Packer communicator over a Transport: it knows the commands
// in flight and can abort them (Aborter). Builders and post-processors put
// it into the state in place of the communicator Packer's StepConnect
// made, so that provisioners' commands, served over Packer's RPC without
// a context, are stopped too when the build ends.
type Guard struct {
	packersdk.Communicator
	transport *Transport

	mu       sync.Mutex
	inflight map[*call]struct{}
	changed  chan struct{}
}

// call is one Start or Upload in flight.
type call struct {
	aborted func() // set when the call was aborted; ends the abort's grace
}

// NewGuard wraps comm, whose WinRM client uses t.
func NewGuard(comm packersdk.Communicator, t *Transport) *Guard {
	return &Guard{Communicator: comm, transport: t, inflight: map[*call]struct{}{}, changed: make(chan struct{})}
}

var _ Aborter = (*Guard)(nil)

func (g *Guard) begin() *call {
	c := &call{}
	g.mu.Lock()
	g.inflight[c] = struct{}{}
	g.mu.Unlock()
	return c
}

func (g *Guard) end(c *call) {
	g.mu.Lock()
	delete(g.inflight, c)
	aborted := c.aborted
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
	if aborted != nil {
		aborted()
	}
}

func (g *Guard) Start(ctx context.Context, cmd *packersdk.RemoteCmd) error {
	c := g.begin()
	defer g.end(c)
	return g.Communicator.Start(ctx, cmd)
}

func (g *Guard) Upload(path string, r io.Reader, fi *os.FileInfo) error {
	c := g.begin()
	defer g.end(c)
	return g.Communicator.Upload(path, r, fi)
}

func (g *Guard) UploadDir(dst, src string, exclude []string) error {
	c := g.begin()
	defer g.end(c)
	return g.Communicator.UploadDir(dst, src, exclude)
}

func (g *Guard) Download(path string, w io.Writer) error {
	c := g.begin()
	defer g.end(c)
	return g.Communicator.Download(path, w)
}

// Abort ends the requests of every command in flight: the WinRM client
// then signals the command to terminate and deletes its shell, each
// request bounded by abortedRequestTimeout.
func (g *Guard) Abort() {
	g.mu.Lock()
	var calls []*call
	for c := range g.inflight {
		if c.aborted == nil {
			calls = append(calls, c)
		}
	}
	g.mu.Unlock()
	if len(calls) == 0 {
		return
	}
	dones := make([]func(), len(calls))
	for i := range calls {
		dones[i] = g.transport.abort()
	}
	g.mu.Lock()
	for i, c := range calls {
		if _, still := g.inflight[c]; still {
			c.aborted = dones[i]
		} else {
			dones[i]()
		}
	}
	g.mu.Unlock()
}

// Settle waits up to d until no command is in flight.
func (g *Guard) Settle(d time.Duration) bool {
	deadline := time.After(d)
	for {
		g.mu.Lock()
		n, ch := len(g.inflight), g.changed
		g.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// InFlight is the number of commands and transfers running.
func (g *Guard) InFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.inflight)
}
