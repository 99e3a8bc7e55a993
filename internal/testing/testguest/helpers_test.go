package testguest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// fastPower is a restart of about a second: long enough for a test to
// see each listener state, short enough to keep the package fast.
func fastPower() winsim.PowerOptions {
	return winsim.PowerOptions{
		ShutdownDelay:  100 * time.Millisecond,
		ShutdownTime:   150 * time.Millisecond,
		OffTime:        200 * time.Millisecond,
		BootTime:       300 * time.Millisecond,
		ShutdownSecond: 50 * time.Millisecond,
	}
}

// scaledClock is the wall clock with durations scaled: one second lasts
// unit (Start-Sleep, shutdown /t, servicing times). Now is real time.
type scaledClock struct{ unit time.Duration }

func (c scaledClock) Now() time.Time { return time.Now() }

func (c scaledClock) AfterFunc(d time.Duration, f func()) winsim.Timer {
	return time.AfterFunc(time.Duration(float64(d)*float64(c.unit)/float64(time.Second)), f)
}

// client is a masterzen client for g with Basic authentication and the
// given OperationTimeout; httpTimeout is Endpoint.Timeout (0: none, as
// Packer).
func client(t *testing.T, g *Guest, operationTimeout string, httpTimeout time.Duration) *winrm.Client {
	t.Helper()
	h, p := g.HostPort()
	user, pass := g.Credentials()
	params := winrm.NewParameters(operationTimeout, "en-US", 153600)
	c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: h, Port: p, Timeout: httpTimeout}, user, pass, params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	stdout, stderr string
	code           int
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, err %v, stdout %q, stderr %q", r.code, r.err, r.stdout, r.stderr)
}

// runCmd runs a command line with masterzen's RunWithContext (the whole
// line as rsp:Command, through cmd.exe), with a watchdog.
func runCmd(t *testing.T, c *winrm.Client, line string, limit time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan result, 1)
	go func() {
		code, err := c.RunWithContext(ctx, line, &out, &errb)
		done <- result{code: code, err: err}
	}()
	select {
	case r := <-done:
		r.stdout, r.stderr = out.String(), errb.String()
		return r
	case <-time.After(limit + 5*time.Second):
		t.Fatalf("%q: no answer %v after its deadline", line, 5*time.Second)
		return result{}
	}
}

// mustRun runs line and wants exit code 0 and no error.
func mustRun(t *testing.T, c *winrm.Client, line string) result {
	t.Helper()
	r := runCmd(t, c, line, 20*time.Second)
	if r.err != nil || r.code != 0 {
		t.Fatalf("%q: exit %d, err %v\nstdout %q\nstderr %q", line, r.code, r.err, r.stdout, r.stderr)
	}
	return r
}

// decodeAgent parses the agent's one JSON document (trailing newline
// included) into doc, strictly.
func decodeAgent(t *testing.T, stdout string, doc any) {
	t.Helper()
	if !strings.HasSuffix(stdout, "\n") || strings.Count(strings.TrimSpace(stdout), "\n") != 0 {
		t.Fatalf("agent stdout is not one JSON line: %q", stdout)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(doc); err != nil {
		t.Fatalf("agent stdout %q: %v", stdout, err)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}
