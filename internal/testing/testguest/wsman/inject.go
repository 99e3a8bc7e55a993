package wsman

import (
	"math/rand/v2"
	"time"
)

// Effect is what an injected failure does to a request.
type Effect int

const (
	// EffectNone only adds the Injection's Delay (latency).
	EffectNone Effect = iota
	// EffectDropFIN closes the connection (FIN) instead of answering; a
	// masterzen Receive then ends with exit code 16001 and an EOF error.
	EffectDropFIN
	// EffectDropRST resets the connection (SO_LINGER 0) instead of
	// answering; masterzen returns exit code 0 and "connection reset by
	// peer".
	EffectDropRST
	// EffectBlackhole never answers; the request is held until the client
	// closes the connection or the server closes.
	EffectBlackhole
	// EffectTimeout answers the Receive timeout fault (w:TimedOut) at once,
	// leaving any output queued.
	EffectTimeout
	// EffectUnavailable answers HTTP.sys's 503 text/html page.
	EffectUnavailable
	// EffectRegistryKeyDeleted answers the w:InternalError fault 2147943418
	// "Illegal operation attempted on a registry key that has been marked
	// for deletion." from the shell plugin, as Create does early in boot.
	EffectRegistryKeyDeleted

	// effectDeferToState: the listener state changed under the request;
	// the state decides (503, hold, drop).
	effectDeferToState Effect = -1
)

// Injection is a failure applied to the next matching requests. Requests
// match after authentication (on NTLM, the authenticated leg).
type Injection struct {
	// Op selects the requests (OpAny: every request).
	Op Op
	// Effect replaces the normal answer.
	Effect Effect
	// Delay is waited before handling the request (or, with AfterHandling,
	// before applying Effect).
	Delay time.Duration
	// Times is how many matching requests are affected: 0 means 1, a
	// negative value means until ClearInjections.
	Times int
	// AfterHandling performs the request (a shell is created, a command
	// started, output taken by a Receive) before Effect replaces the answer:
	// the client never learns what happened.
	AfterHandling bool
}

// Inject queues an injection. Injections are matched in the order given.
func (s *Server) Inject(inj Injection) {
	if inj.Times == 0 {
		inj.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injections = append(s.injections, &inj)
}

// ClearInjections removes every queued injection.
func (s *Server) ClearInjections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injections = nil
}

// PendingInjections is the number of injections not yet used up.
func (s *Server) PendingInjections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.injections)
}

// takeInjection returns the injection for a request of op, if any.
func (s *Server) takeInjection(op Op) *Injection {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, inj := range s.injections {
		if inj.Op != OpAny && inj.Op != op {
			continue
		}
		cp := *inj
		if inj.Times > 0 {
			inj.Times--
			if inj.Times == 0 {
				s.injections = append(s.injections[:i:i], s.injections[i+1:]...)
			}
		}
		return &cp
	}
	return nil
}

// SetLatency delays every authenticated request by base plus a random
// duration up to jitter (zero both to stop).
func (s *Server) SetLatency(base, jitter time.Duration) {
	s.latency.Store(int64(base))
	s.jitter.Store(int64(jitter))
}

func (s *Server) requestLatency() time.Duration {
	d := time.Duration(s.latency.Load())
	if j := s.jitter.Load(); j > 0 {
		d += time.Duration(rand.Int64N(j + 1))
	}
	return d
}

// SetKeepAliveRequests closes each connection after n requests from now on
// (Connection: close), forcing reconnects and NTLM re-handshakes; 0 keeps
// connections open. Options.KeepAliveRequests is the initial value.
func (s *Server) SetKeepAliveRequests(n int) {
	s.keepAlive.Store(int64(n))
}
