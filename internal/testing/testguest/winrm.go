package testguest

import (
	"crypto/sha1" //nolint:gosec // a certificate's thumbprint is SHA-1
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// A Guest with Options.WinRM serves what the simulated Windows' WinRM
// configuration says, and follows it when a command changes it: the
// reachable listeners on their ports (an HTTPS listener with the
// certificate it names), the authentication schemes and the encryption
// requirement (winsim.WinRMConfig.Endpoints). Listeners that went away or
// changed are closed first.

// winrmServing is what a Guest with a WinRM configuration serves.
type winrmServing struct {
	mu      sync.Mutex
	serving map[string]string // transport: "HTTP :5985", "HTTPS :5986 <thumbprint>"
	notes   []string
}

// listenAddr is where a listener on the guest's port listens.
func (g *Guest) listenAddr(port int) string {
	if g.opts.WinRMListenAddr != nil {
		return g.opts.WinRMListenAddr(port)
	}
	return ":" + strconv.Itoa(port)
}

// serveWinRM makes the server serve the configuration.
func (g *Guest) serveWinRM() error {
	w := &g.winrm
	w.mu.Lock()
	defer w.mu.Unlock()
	var eps []winsim.WinRMEndpoint
	var auth wsman.AuthMethods
	var reject bool
	_ = g.Machine.WinRM(func(c *winsim.WinRMConfig) error {
		eps, auth, reject, w.notes = c.Endpoints()
		return nil
	})
	srv := g.Server
	srv.SetAuthentication(auth, reject)
	want := map[string]string{}
	byTransport := map[string]winsim.WinRMEndpoint{}
	for _, ep := range eps {
		desc := fmt.Sprintf("%s :%d", ep.Transport, ep.Port)
		if ep.Certificate != nil {
			sum := sha1.Sum(ep.Certificate.Certificate[0]) //nolint:gosec // the thumbprint
			desc += " " + strings.ToUpper(hex.EncodeToString(sum[:]))
		}
		want[ep.Transport], byTransport[ep.Transport] = desc, ep
	}
	if w.serving == nil {
		w.serving = map[string]string{}
	}
	var errs []error
	for _, transport := range []string{"HTTP", "HTTPS"} {
		have, serving := w.serving[transport]
		desc, wanted := want[transport]
		if serving && have == desc {
			continue
		}
		if serving {
			srv.CloseListener(transport == "HTTPS")
			delete(w.serving, transport)
			g.logf("winrm: listener %s closed", have)
		}
		if !wanted {
			continue
		}
		ep := byTransport[transport]
		addr := g.listenAddr(ep.Port)
		var err error
		if transport == "HTTPS" {
			if err = srv.SetTLSCertificate(*ep.Certificate); err == nil {
				err = srv.ListenTLS(addr)
			}
		} else {
			err = srv.Listen(addr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %s: %w", desc, err))
			continue
		}
		w.serving[transport] = desc
		g.logf("winrm: listener %s on %s", desc, addr)
	}
	return errors.Join(errs...)
}

// WinRMServing describes the listeners served ("HTTP :5985",
// "HTTPS :5986 <thumbprint>") and why others are not.
func (g *Guest) WinRMServing() (served, notes []string) {
	w := &g.winrm
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, transport := range []string{"HTTP", "HTTPS"} {
		if d, ok := w.serving[transport]; ok {
			served = append(served, d)
		}
	}
	return served, append([]string(nil), w.notes...)
}

// winrmChanged follows a change of the configuration, then tells the
// caller (Options.WinRMChanged).
func (g *Guest) winrmChanged() {
	g.mu.Lock()
	started := g.started && !g.closed
	g.mu.Unlock()
	if started {
		if err := g.serveWinRM(); err != nil {
			g.logf("winrm: %v", err)
		}
	}
	if g.opts.WinRMChanged != nil {
		g.opts.WinRMChanged()
	}
}

func (g *Guest) logf(format string, args ...any) {
	if g.opts.Logf != nil {
		g.opts.Logf(format, args...)
	}
}
