package wsman

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// reply is the outcome of a request.
type reply struct {
	status int
	body   string
	effect Effect // EffectNone: send status/body
}

func soapReply(body string) reply { return reply{status: http.StatusOK, body: body} }

func (s *Server) faultReply(f *fault, req *request, machine string) reply {
	relates := ""
	if req != nil {
		relates = req.messageID
	}
	return reply{status: http.StatusInternalServerError, body: f.render(relates, machine, s.opts.ActivityID)}
}

// httpSys503 is the page HTTP.sys sends when no application serves the URL:
// WinRM not started yet during boot.
const httpSys503 = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n" +
	"<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n" +
	"<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n" +
	"<BODY><h2>Service Unavailable</h2>\r\n" +
	"<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n" +
	"</BODY></HTML>\r\n"

const httpSys404 = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n" +
	"<HTML><HEAD><TITLE>Not Found</TITLE>\r\n" +
	"<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n" +
	"<BODY><h2>Not Found</h2>\r\n" +
	"<hr><p>HTTP Error 404. The requested resource is not found.</p>\r\n" +
	"</BODY></HTML>\r\n"

func writeHTML(w http.ResponseWriter, status int, page string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=us-ascii")
	h.Set("Server", "Microsoft-HTTPAPI/2.0")
	h.Set("Connection", "close")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, page)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.abort(w, connFrom(r.Context()), true)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	tc := connFrom(r.Context())
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.opts.MaxEnvelopeSize)+1))
	ex := Exchange{Op: OpUnknown, Request: body}
	defer func() {
		if s.opts.Trace != nil {
			s.opts.Trace(ex)
		}
	}()
	if err != nil {
		// The connection went away mid-request (dropped, reset after a
		// blackhole): nothing to answer, nothing to perform.
		s.abort(w, tc, true)
		return
	}

	if !s.gate(w, r, tc, &ex) {
		return
	}
	if r.URL.Path != "/wsman" {
		s.failf("wsman: request for %s %s, not POST /wsman", r.Method, r.URL.Path)
		ex.Status = http.StatusNotFound
		writeHTML(w, http.StatusNotFound, httpSys404)
		return
	}
	if r.Method != http.MethodPost {
		s.failf("wsman: %s /wsman, only POST is served", r.Method)
		ex.Status = http.StatusMethodNotAllowed
		w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
		w.Header().Set("Allow", "POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	user, viaNTLM, contextSetup, session, ok := s.authenticate(w, r, tc, len(body))
	if !ok {
		ex.Status = http.StatusUnauthorized
		return
	}
	ex.User = user
	sealed := false
	if ct := r.Header.Get("Content-Type"); isEncryptedContentType(ct) {
		sig, sealedBody, err := parseEncryptedMessage(ct, body)
		switch {
		case err != nil:
			s.failf("wsman: %v", err)
		case session == nil:
			s.failf("wsman: an encrypted request on a connection without an NTLM security context for it (authenticated by NTLM: %v; sealing needs SIGN or SEAL with extended session security, NTLMv1 sealing is not modelled)", viaNTLM)
		case session.flags&ntlmSeal == 0:
			s.failf("wsman: an encrypted request, but the NTLM context negotiated signing only (NTLMSSP_NEGOTIATE_SEAL not set)")
		default:
			body, err = session.unseal(sealedBody, sig)
		}
		if err != nil || session == nil || session.flags&ntlmSeal == 0 {
			ex.Status = http.StatusBadRequest
			s.badRequest(w, tc)
			return
		}
		sealed = true
		ex.Request, ex.Sealed = body, true
	} else if contextSetup {
		// The empty POST whose AUTHENTICATE completes the NTLM security
		// context before sealed messages (pywinrm transport.py
		// setup_encryption, masterzen encryption.go PrepareRequest): 200
		// with nothing to run, so the client knows the context is complete.
		ex.ContextSetup, ex.Status = true, http.StatusOK
		if !s.gate(w, r, tc, &ex) {
			return
		}
		w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	if tc != nil {
		limit := s.keepAlive.Load()
		tc.mu.Lock()
		tc.requests++
		last := limit > 0 && int64(tc.requests) >= limit
		tc.mu.Unlock()
		if last {
			w.Header().Set("Connection", "close")
		}
	}
	if !s.sleep(r.Context(), s.requestLatency()) {
		s.abort(w, tc, true)
		return
	}
	machine := s.opts.Machine
	if machine == "" {
		machine = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			machine = h
		}
	}

	var rep reply
	req, rerr, warnings := (*request)(nil), (*requestError)(nil), []string(nil)
	if len(body) > s.opts.MaxEnvelopeSize {
		rerr = &requestError{fault: faultEnvelopeLimit()}
	} else if ct := r.Header.Get("Content-Type"); !sealed && !strings.Contains(strings.ToLower(ct), "application/soap+xml") {
		rerr = &requestError{fault: faultInvalidXML(), report: "request Content-Type " + strconv.Quote(ct) + " is not application/soap+xml"}
	} else {
		req, rerr, warnings = parseRequest(body)
	}
	for _, wmsg := range warnings {
		s.failf("wsman: %s", wmsg)
	}
	op := OpUnknown
	if req != nil {
		op = req.op
		ex.Action = req.action
	}
	ex.Op = op
	s.mu.Lock()
	s.counts[op]++
	s.mu.Unlock()

	inj := s.takeInjection(op)
	if inj != nil && !inj.AfterHandling {
		if !s.sleep(r.Context(), inj.Delay) {
			s.abort(w, tc, true)
			return
		}
		if inj.Effect != EffectNone {
			rep = reply{effect: inj.Effect}
			goto deliver
		}
	}
	if rerr != nil {
		if rerr.report != "" {
			s.failf("wsman: %s", rerr.report)
		}
		rep = s.faultReply(rerr.fault, req, machine)
	} else {
		rep = s.dispatch(r, tc, req, user, machine)
	}
	if inj != nil && inj.AfterHandling {
		if !s.sleep(r.Context(), inj.Delay) {
			s.abort(w, tc, true)
			return
		}
		if inj.Effect != EffectNone {
			rep = reply{effect: inj.Effect}
		}
	}

deliver:
	switch rep.effect {
	case effectDeferToState:
		if s.gate(w, r, tc, &ex) {
			// Back up already: the connection belongs to the time before.
			s.abort(w, tc, true)
		}
		return
	case EffectDropFIN, EffectDropRST:
		s.abort(w, tc, rep.effect == EffectDropRST)
		return
	case EffectBlackhole:
		select {
		case <-r.Context().Done():
		case <-s.closedCh:
		}
		s.abort(w, tc, true)
		return
	case EffectTimeout:
		rep = s.faultReply(faultTimedOut(), req, machine)
	case EffectUnavailable:
		if !s.gate(w, r, tc, &ex) {
			return
		}
		ex.Status = http.StatusServiceUnavailable
		writeHTML(w, http.StatusServiceUnavailable, httpSys503)
		return
	case EffectRegistryKeyDeleted:
		rep = s.faultReply(faultInternal(CodeRegistryKeyDeleted, "Illegal operation attempted on a registry key that has been marked for deletion."), req, machine)
	}
	if rep.status == 0 {
		// A request the handler chose not to answer (the connection went
		// away under it).
		s.abort(w, tc, true)
		return
	}
	if !s.gate(w, r, tc, &ex) {
		return
	}
	ex.Status = rep.status
	ex.Response = []byte(rep.body)
	payload, contentType := []byte(rep.body), originalContentType
	if sealed {
		sealedPayload, sig := session.seal(payload)
		payload, contentType = encryptedMessage(sig, sealedPayload), encryptedContentType
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Server", "Microsoft-HTTPAPI/2.0")
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(payload)
}

// sleep waits d unless the request or the server ends first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closedCh:
		return false
	}
}

// gate applies the listener state before anything is written: Up lets the
// response through, Unavailable sends the 503 page, Blackhole holds the
// request, the dropping and refused states abort it. It returns false when
// the caller must not write.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, tc *trackedConn, ex *Exchange) bool {
	for {
		if tc != nil {
			select {
			case <-tc.closedCh:
				return false
			default:
			}
		}
		s.mu.Lock()
		st, ch, closed := s.state, s.stateChanged, s.closed
		s.mu.Unlock()
		if closed {
			s.abort(w, tc, true)
			return false
		}
		switch st {
		case ListenerUp:
			return true
		case ListenerUnavailable:
			ex.Status = http.StatusServiceUnavailable
			ex.Response = []byte(httpSys503)
			writeHTML(w, http.StatusServiceUnavailable, httpSys503)
			return false
		case ListenerBlackhole:
			select {
			case <-ch:
			case <-r.Context().Done():
				s.abort(w, tc, true)
				return false
			case <-s.closedCh:
			}
		default:
			s.abort(w, tc, st != ListenerDropFIN)
			return false
		}
	}
}

// abort ends the request without an answer by closing its connection.
func (s *Server) abort(w http.ResponseWriter, tc *trackedConn, rst bool) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc != nil {
				tc.drop(rst)
			} else {
				_ = c.Close()
			}
			return
		}
	}
	if tc != nil {
		tc.drop(rst)
	}
}
