package wsman

import (
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman/soapxml"
)

// maxCommandLine is CreateProcess's limit on lpCommandLine, in UTF-16 units.
const maxCommandLine = 32767

// minEnvelope is the smallest MaxEnvelopeSize WS-Management accepts.
const minEnvelope = 8192

func (s *Server) dispatch(r *http.Request, tc *trackedConn, req *request, user, machine string) reply {
	// Shell idle timeouts are enforced lazily, before each request.
	s.expire()
	switch req.op {
	case OpCreate:
		return s.create(r, tc, req, user, machine)
	}
	id, ok := req.selectors["ShellId"]
	if !ok || id == "" {
		return s.faultReply(faultMissingSelector(), req, machine)
	}
	s.mu.Lock()
	sh := s.shells[id]
	if sh != nil && sh.owner != user {
		// Shells belong to the user who created them.
		sh = nil
	}
	if sh != nil {
		sh.inflight++
		sh.lastActivity = s.opts.Now()
	}
	s.mu.Unlock()
	if sh == nil {
		return s.faultReply(faultShellNotFound(id), req, machine)
	}
	defer func() {
		s.mu.Lock()
		sh.inflight--
		sh.lastActivity = s.opts.Now()
		s.mu.Unlock()
	}()
	switch req.op {
	case OpCommand:
		return s.command(req, sh, user, machine)
	case OpReceive:
		return s.receive(r, req, sh, machine)
	case OpSend:
		return s.send(req, sh, machine)
	case OpSignal:
		return s.signal(req, sh, machine)
	case OpDelete:
		return s.delete(req, sh, machine)
	}
	s.failf("wsman: no handler for %s", req.op)
	return s.faultReply(faultActionNotSupported(), req, machine)
}

// expire deletes shells idle for longer than their IdleTimeOut.
func (s *Server) expire() {
	now := s.opts.Now()
	var dead []*shell
	s.mu.Lock()
	for id, sh := range s.shells {
		if sh.inflight == 0 && now.Sub(sh.lastActivity) > sh.idle {
			delete(s.shells, id)
			dead = append(dead, sh)
		}
	}
	s.mu.Unlock()
	for _, sh := range dead {
		s.dropShell(sh)
	}
}

// checkOptions reports options outside known; it returns a fault for the
// first unknown or invalid one.
func (s *Server) checkOptions(req *request, known map[string]func(string) bool) *fault {
	for _, o := range req.options {
		valid, ok := known[o.name]
		if !ok {
			s.failf("wsman: unknown option %s=%q on %s", o.name, o.value, req.op)
			return faultInvalidOptions()
		}
		if !valid(o.value) {
			s.failf("wsman: invalid value %q for option %s on %s", o.value, o.name, req.op)
			return faultInvalidOptions()
		}
	}
	return nil
}

func isBool(v string) bool { _, ok := parseBool(v); return ok }

func isCodepage(v string) bool {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return err == nil && n > 0 && n < 65536
}

func (s *Server) userShellsLocked(user string) (shells, commands int) {
	for _, sh := range s.shells {
		if sh.owner == user {
			shells++
			commands += len(sh.order)
		}
	}
	return
}

func (s *Server) create(r *http.Request, tc *trackedConn, req *request, user, machine string) reply {
	if f := s.checkOptions(req, map[string]func(string) bool{
		"WINRS_NOPROFILE": isBool,
		"WINRS_CODEPAGE":  isCodepage,
	}); f != nil {
		return s.faultReply(f, req, machine)
	}
	body := req.body.Child(soapxml.NSShell, "Shell")
	if body == nil || len(req.body.Children) != 1 {
		s.failf("wsman: Create body is not one rsp:Shell")
		return s.faultReply(faultInvalidXML(), req, machine)
	}
	sh := &shell{
		id:         newGUID(),
		owner:      user,
		idle:       s.opts.IdleTimeout,
		inStreams:  "stdin",
		outStreams: "stdout stderr",
		commands:   map[string]*command{},
		gone:       make(chan struct{}),
	}
	if tc != nil {
		if h, _, err := net.SplitHostPort(tc.RemoteAddr().String()); err == nil {
			sh.clientIP = h
		}
	}
	if v, ok := req.option("WINRS_NOPROFILE"); ok {
		sh.noProfile, _ = parseBool(v)
	}
	if v, ok := req.option("WINRS_CODEPAGE"); ok {
		sh.codepage, _ = strconv.Atoi(strings.TrimSpace(v))
	}
	for _, c := range body.Children {
		if c.Name.Space != soapxml.NSShell {
			s.failf("wsman: unexpected element {%s}%s in rsp:Shell", c.Name.Space, c.Name.Local)
			return s.faultReply(faultInvalidXML(), req, machine)
		}
		text := strings.TrimSpace(c.Text)
		switch c.Name.Local {
		case "InputStreams":
			sh.inStreams = text
		case "OutputStreams":
			sh.outStreams = text
		case "WorkingDirectory":
			sh.workDir = text
		case "Name":
			// Accepted and not echoed, as Windows does.
		case "Lifetime":
			// Ignored by WinRM 2.0 and later.
			if _, ok := parseDuration(text); !ok {
				s.failf("wsman: unparseable rsp:Lifetime %q", text)
				return s.faultReply(faultInvalidXML(), req, machine)
			}
		case "IdleTimeOut":
			d, ok := parseDuration(text)
			if !ok {
				s.failf("wsman: unparseable rsp:IdleTimeOut %q", text)
				return s.faultReply(faultInvalidXML(), req, machine)
			}
			sh.idle = d
		case "Environment":
			for _, v := range c.Children {
				name, ok := v.Attr("", "Name")
				if !v.Is(soapxml.NSShell, "Variable") || !ok {
					s.failf("wsman: unexpected element {%s}%s in rsp:Environment", v.Name.Space, v.Name.Local)
					return s.faultReply(faultInvalidXML(), req, machine)
				}
				sh.env = append(sh.env, envVar{name: name, value: v.Text})
			}
		default:
			s.failf("wsman: unexpected element rsp:%s in rsp:Shell", c.Name.Local)
			return s.faultReply(faultInvalidXML(), req, machine)
		}
	}
	if sh.inStreams != "stdin" || sh.outStreams != "stdout stderr" {
		s.failf("wsman: shell streams %q / %q, only stdin / stdout stderr are served", sh.inStreams, sh.outStreams)
		return s.faultReply(faultInvalidXML(), req, machine)
	}
	// The service checks the quota, then the shell plugin creates the shell.
	if cf, ok := s.host.(CreateFaulter); ok {
		s.mu.Lock()
		n, _ := s.userShellsLocked(user)
		s.mu.Unlock()
		if f := cf.CreateFault(); f != nil && n < s.opts.MaxShellsPerUser {
			return s.faultReply(faultInternal(f.Code, f.Message), req, machine)
		}
	}
	s.mu.Lock()
	if n, _ := s.userShellsLocked(user); n >= s.opts.MaxShellsPerUser {
		s.mu.Unlock()
		return s.faultReply(faultMaxShells(s.opts.MaxShellsPerUser), req, machine)
	}
	sh.lastActivity = s.opts.Now()
	s.shells[sh.id] = sh
	s.mu.Unlock()
	address := req.to
	if address == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		address = scheme + "://" + r.Host + "/wsman"
	}
	return soapReply(createResponse(req.messageID, address, sh, s.opts.SelectorOnlyCreate, s.opts.ActivityID))
}

func (s *Server) command(req *request, sh *shell, user, machine string) reply {
	if f := s.checkOptions(req, map[string]func(string) bool{
		"WINRS_CONSOLEMODE_STDIN": isBool,
		"WINRS_SKIP_CMD_SHELL":    isBool,
	}); f != nil {
		return s.faultReply(f, req, machine)
	}
	cl := req.body.Child(soapxml.NSShell, "CommandLine")
	if cl == nil || len(req.body.Children) != 1 {
		s.failf("wsman: Command body is not one rsp:CommandLine")
		return s.faultReply(faultInvalidXML(), req, machine)
	}
	cr := CommandRequest{
		ShellID:          sh.id,
		Codepage:         sh.codepage,
		NoProfile:        sh.noProfile,
		WorkingDirectory: sh.workDir,
		Environment:      sh.environment(),
		User:             user,
	}
	if v, ok := req.option("WINRS_SKIP_CMD_SHELL"); ok {
		cr.SkipCmdShell, _ = parseBool(v)
	}
	hasCommand := false
	for _, c := range cl.Children {
		switch {
		case c.Is(soapxml.NSShell, "Command") && !hasCommand:
			cr.Command, hasCommand = c.Text, true
		case c.Is(soapxml.NSShell, "Arguments"):
			cr.Arguments = append(cr.Arguments, c.Text)
		default:
			s.failf("wsman: unexpected element {%s}%s in rsp:CommandLine", c.Name.Space, c.Name.Local)
			return s.faultReply(faultInvalidXML(), req, machine)
		}
	}
	if strings.TrimSpace(cr.Command) == "" {
		return s.faultReply(faultInvalidParameter(), req, machine)
	}
	line := strings.Join(append([]string{cr.Command}, cr.Arguments...), " ")
	if !cr.SkipCmdShell {
		line = "cmd.exe /c " + line
	}
	if len(utf16.Encode([]rune(line))) > maxCommandLine {
		return s.faultReply(faultInternal(CodeFilenameTooLong, "The filename or extension is too long."), req, machine)
	}
	s.mu.Lock()
	if _, n := s.userShellsLocked(user); n >= s.opts.MaxConcurrentOperationsPerUser {
		s.mu.Unlock()
		return s.faultReply(faultMaxOperations(s.opts.MaxConcurrentOperationsPerUser), req, machine)
	}
	s.mu.Unlock()

	proc, err := s.host.Start(s.procCtx, cr)
	if err != nil {
		var cf *CommandFault
		if errors.As(err, &cf) {
			return s.faultReply(faultInternal(cf.Code, cf.Message), req, machine)
		}
		s.failf("wsman: Host.Start(%q %q): %v", cr.Command, cr.Arguments, err)
		return s.faultReply(faultInternal(CodeInternalErrorUnreported, "Unspecified error"), req, machine)
	}
	if proc == nil {
		s.failf("wsman: Host.Start(%q %q) returned no Process and no error", cr.Command, cr.Arguments)
		return s.faultReply(faultInternal(CodeInternalErrorUnreported, "Unspecified error"), req, machine)
	}
	c := newCommand(newGUID(), sh, proc, s.opts.MaxQueuedOutput)
	s.mu.Lock()
	select {
	case <-sh.gone:
		// Deleted or discarded while the process started.
		s.mu.Unlock()
		proc.Terminate()
		s.goProc(func() { drainProcess(proc) })
		return s.faultReply(faultShellNotFound(sh.id), req, machine)
	default:
	}
	sh.commands[c.id] = c
	sh.order = append(sh.order, c)
	s.mu.Unlock()
	if oo, ok := proc.(OrderedOutput); ok {
		s.goProc(func() { c.pumpOrdered(oo, s.failf) })
	} else {
		stdout, stderr := proc.Stdout(), proc.Stderr()
		s.goProc(func() { c.pump(streamStdout, stdout) })
		s.goProc(func() { c.pump(streamStderr, stderr) })
	}
	s.goProc(c.wait)
	return soapReply(commandResponse(req.messageID, c.id, s.opts.ActivityID))
}

// drainProcess consumes a process nobody will receive from.
func drainProcess(p Process) {
	buf := make([]byte, 32<<10)
	if oo, ok := p.(OrderedOutput); ok {
		for {
			if _, _, err := oo.ReadOutput(buf); err != nil {
				break
			}
		}
		p.Wait()
		return
	}
	for _, r := range []interface{ Read([]byte) (int, error) }{p.Stdout(), p.Stderr()} {
		if r == nil {
			continue
		}
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
	p.Wait()
}

// commandOf finds the command a Receive, Send or Signal names in attribute
// CommandId of el.
func (s *Server) commandOf(sh *shell, el *soapxml.Node) (*command, *fault) {
	id, ok := el.Attr("", "CommandId")
	if !ok || strings.TrimSpace(id) == "" {
		return nil, faultInvalidParameter()
	}
	s.mu.Lock()
	c := sh.commands[strings.ToUpper(strings.TrimSpace(id))]
	s.mu.Unlock()
	if c == nil {
		return nil, faultCommandNotFound()
	}
	return c, nil
}

func (s *Server) receive(r *http.Request, req *request, sh *shell, machine string) reply {
	if f := s.checkOptions(req, map[string]func(string) bool{
		"WSMAN_CMDSHELL_OPTION_KEEPALIVE": isBool,
	}); f != nil {
		return s.faultReply(f, req, machine)
	}
	rcv := req.body.Child(soapxml.NSShell, "Receive")
	if rcv == nil || len(req.body.Children) != 1 {
		s.failf("wsman: Receive body is not one rsp:Receive")
		return s.faultReply(faultInvalidXML(), req, machine)
	}
	ds := rcv.Child(soapxml.NSShell, "DesiredStream")
	if ds == nil {
		return s.faultReply(faultInvalidParameter(), req, machine)
	}
	var want [2]bool
	var streams []string
	for _, name := range strings.Fields(ds.Text) {
		switch name {
		case "stdout":
			want[streamStdout] = true
		case "stderr":
			want[streamStderr] = true
		default:
			s.failf("wsman: Receive of unknown stream %q", name)
			return s.faultReply(faultInvalidParameter(), req, machine)
		}
	}
	for i, n := range streamNames {
		if want[i] {
			streams = append(streams, n)
		}
	}
	if len(streams) == 0 {
		return s.faultReply(faultInvalidParameter(), req, machine)
	}
	c, f := s.commandOf(sh, ds)
	if f != nil {
		return s.faultReply(f, req, machine)
	}
	limit := s.opts.MaxEnvelopeSize
	if req.maxEnvelope > 0 && req.maxEnvelope < limit {
		limit = req.maxEnvelope
	}
	if limit < minEnvelope {
		return s.faultReply(faultEnvelopeLimit(), req, machine)
	}
	timeout := s.opts.MaxTimeout
	if req.hasTimeout && req.timeout < timeout {
		timeout = req.timeout
	}

	c.recvMu.Lock()
	defer c.recvMu.Unlock()

	c.mu.Lock()
	if c.doneSent {
		c.mu.Unlock()
		if s.opts.ReceiveAfterDone == AfterDoneExitZero {
			b := newReceiveBuilder(req.messageID, c.id, s.opts.ActivityID)
			return soapReply(b.finish(streams, true, 0))
		}
		return s.faultReply(faultCommandNotFound(), req, machine)
	}
	c.mu.Unlock()

	// has reports output to take or completion; c.mu held.
	has := func() bool {
		for _, ch := range c.queue {
			if want[ch.stream] {
				return true
			}
		}
		return c.complete()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var gather <-chan time.Time
	for {
		s.mu.Lock()
		stateCh, up := s.stateChanged, s.state == ListenerUp
		s.mu.Unlock()
		if !up {
			// Leave the output queued; the listener state decides what the
			// client gets.
			return reply{effect: effectDeferToState}
		}
		c.mu.Lock()
		discarded := c.discarded
		ready := has()
		complete := c.complete()
		full := ready && s.fits(c, want, streams, limit, req, c.id)
		changed := c.changed
		c.mu.Unlock()
		if discarded {
			return s.faultReply(faultShellNotFound(sh.id), req, machine)
		}
		if complete || full {
			break
		}
		if ready && gather == nil {
			t := time.NewTimer(s.opts.ReceiveGather)
			defer t.Stop()
			gather = t.C
		}
		select {
		case <-changed:
		case <-gather:
			goto build
		case <-deadline.C:
			if ready {
				goto build
			}
			return s.faultReply(faultTimedOut(), req, machine)
		case <-stateCh:
		case <-sh.gone:
			return s.faultReply(faultShellNotFound(sh.id), req, machine)
		case <-r.Context().Done():
			return reply{}
		case <-s.closedCh:
			return reply{}
		}
	}
build:
	return soapReply(s.buildReceive(c, want, streams, limit, req))
}

// fits reports that the queued output fills a response of limit bytes;
// c.mu held.
func (s *Server) fits(c *command, want [2]bool, streams []string, limit int, req *request, id string) bool {
	b := newReceiveBuilder(req.messageID, id, s.opts.ActivityID)
	room := limit - b.len() - b.maxTrailer(streams)
	for _, ch := range c.queue {
		if !want[ch.stream] {
			continue
		}
		room -= b.chunkCost(streamNames[ch.stream], len(ch.data))
		if room < 0 {
			return true
		}
	}
	return false
}

// buildReceive takes as much queued output as fits in limit bytes and
// renders the ReceiveResponse, with Done when nothing is left.
func (s *Server) buildReceive(c *command, want [2]bool, streams []string, limit int, req *request) string {
	b := newReceiveBuilder(req.messageID, c.id, s.opts.ActivityID)
	room := limit - b.len() - b.maxTrailer(streams) - 1
	c.mu.Lock()
	defer c.mu.Unlock()
	var rest []chunk
	stop := false
	for _, ch := range c.queue {
		if stop || !want[ch.stream] {
			rest = append(rest, ch)
			continue
		}
		name := streamNames[ch.stream]
		data := ch.data
		for len(data) > 0 {
			n := len(data)
			if s.opts.ChunkSize > 0 && n > s.opts.ChunkSize {
				n = s.opts.ChunkSize
			}
			if max := b.maxBytes(name, room); n > max {
				n = max
			}
			if n <= 0 {
				break
			}
			room -= b.chunkCost(name, n)
			b.addChunk(name, data[:n])
			c.queued -= n
			data = data[n:]
		}
		if len(data) > 0 {
			rest = append(rest, chunk{stream: ch.stream, data: data})
			stop = true
		}
	}
	c.queue = rest
	c.room.Broadcast()
	done := c.complete()
	for _, ch := range c.queue {
		if want[ch.stream] {
			done = false
		}
	}
	if done {
		c.doneSent = true
	}
	return b.finish(streams, done, c.exitCode)
}

func (s *Server) send(req *request, sh *shell, machine string) reply {
	if f := s.checkOptions(req, nil); f != nil {
		return s.faultReply(f, req, machine)
	}
	snd := req.body.Child(soapxml.NSShell, "Send")
	if snd == nil || len(req.body.Children) != 1 {
		s.failf("wsman: Send body is not one rsp:Send")
		return s.faultReply(faultInvalidXML(), req, machine)
	}
	for _, st := range snd.Children {
		if !st.Is(soapxml.NSShell, "Stream") {
			s.failf("wsman: unexpected element {%s}%s in rsp:Send", st.Name.Space, st.Name.Local)
			return s.faultReply(faultInvalidXML(), req, machine)
		}
		if name, _ := st.Attr("", "Name"); name != "stdin" {
			s.failf("wsman: Send to stream %q", name)
			return s.faultReply(faultInvalidParameter(), req, machine)
		}
		c, f := s.commandOf(sh, st)
		if f != nil {
			return s.faultReply(f, req, machine)
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Text))
		if err != nil {
			s.failf("wsman: Send data is not base64: %v", err)
			return s.faultReply(faultInvalidParameter(), req, machine)
		}
		endAttr, _ := st.Attr("", "End")
		end, _ := parseBool(endAttr)
		c.send(data, end, s.goProc)
	}
	return soapReply(sendResponse(req.messageID, s.opts.ActivityID))
}

func (s *Server) signal(req *request, sh *shell, machine string) reply {
	if f := s.checkOptions(req, nil); f != nil {
		return s.faultReply(f, req, machine)
	}
	sig := req.body.Child(soapxml.NSShell, "Signal")
	if sig == nil || len(req.body.Children) != 1 {
		s.failf("wsman: Signal body is not one rsp:Signal")
		return s.faultReply(faultInvalidXML(), req, machine)
	}
	c, f := s.commandOf(sh, sig)
	if f != nil {
		return s.faultReply(f, req, machine)
	}
	var code string
	if el := sig.Child(soapxml.NSShell, "Code"); el != nil {
		code = strings.TrimSpace(el.Text)
	}
	switch code {
	case signalTerminate, signalCtrlC, signalCtrlBreak:
	default:
		s.failf("wsman: unknown signal code %q", code)
		return s.faultReply(faultInvalidParameter(), req, machine)
	}
	c.mu.Lock()
	running := !c.exited
	c.mu.Unlock()
	if running {
		c.proc.Terminate()
	}
	return soapReply(signalResponse(req.messageID, s.opts.ActivityID))
}

func (s *Server) delete(req *request, sh *shell, machine string) reply {
	if f := s.checkOptions(req, nil); f != nil {
		return s.faultReply(f, req, machine)
	}
	if len(req.body.Children) != 0 {
		s.failf("wsman: Delete with a non-empty body")
	}
	s.mu.Lock()
	if s.shells[sh.id] != sh {
		s.mu.Unlock()
		return s.faultReply(faultShellNotFound(sh.id), req, machine)
	}
	delete(s.shells, sh.id)
	s.mu.Unlock()
	s.dropShell(sh)
	return soapReply(deleteResponse(req.messageID, s.opts.ActivityID))
}
