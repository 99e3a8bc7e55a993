// Package winrmwait tells whether a guest's WinRM port is really there
// before a WinRM call is risked on it.
//
// Under QEMU's user network the host side of a port forward accepts every
// connection at once, also while the guest is down or not listening yet;
// QEMU then keeps resending the guest the connection's SYN with growing
// pauses, and the connection hangs, silent, until one gets through, which
// can be seconds after the guest's WinRM listens. A WinRM call made on such
// a connection waits all that time (its timeout is winrm_timeout). Answered
// asks a fresh connection for any reaction within a short time instead.
package winrmwait

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Timeout bounds one look.
const Timeout = 2 * time.Second

// Answered connects to host:port and sends the start of an HTTP request:
// any reaction (an answer, or the connection closed or reset, as a guest
// that is up but not listening does) within Timeout is nil; silence is an
// error. A nil answer does not mean WinRM is ready, only that a call on a
// new connection will not hang waiting for the guest.
//
// Only a loopback address is looked at: that is where a QEMU port forward
// listens. A guest reached on a network address accepts or refuses
// connections itself, and the look, whose bytes are not encrypted, is not
// sent across a network (to an HTTPS listener it would go in the clear).
func Answered(ctx context.Context, host string, port int) error {
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		if host != "localhost" {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// An HTTP listener answers this (401: no credentials), a TLS one with
	// an alert, Windows' HTTP.sys in either case.
	if _, err := conn.Write([]byte("POST /wsman HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 0\r\n\r\n")); err != nil {
		return nil // reset: something reacted
	}
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer from %s within %s", addr, Timeout)
	}
	return nil
}
