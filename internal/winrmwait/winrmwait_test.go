package winrmwait

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// A listener that answers, one that closes at once and a closed port
// count as reactions (the last fails to connect); one that accepts and
// stays silent does not.
func TestAnswered(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	h, p := hostPort(t, srv.Listener.Addr().String())
	if err := Answered(context.Background(), h, p); err != nil {
		t.Errorf("HTTP listener: %v", err)
	}

	closing, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closing.Close() }()
	go func() {
		for {
			c, err := closing.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	h, p = hostPort(t, closing.Addr().String())
	if err := Answered(context.Background(), h, p); err != nil {
		t.Errorf("a listener that closes: %v", err)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	h, p = hostPort(t, silent.Addr().String())
	if err := Answered(context.Background(), h, p); err == nil || !strings.Contains(err.Error(), "no answer from") {
		t.Errorf("a silent listener: %v", err)
	}
	_ = silent.Close()
	for len(held) > 0 {
		_ = (<-held).Close()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, p = hostPort(t, ln.Addr().String())
	_ = ln.Close()
	if err := Answered(context.Background(), h, p); err == nil {
		t.Error("a closed port answered")
	}
}

// A network address is not looked at: the look would fail there (TEST-NET-1,
// RFC 5737, reaches nothing), so nil shows that no connection was tried.
func TestAnsweredLooksAtLoopbackOnly(t *testing.T) {
	if err := Answered(context.Background(), "192.0.2.1", 5986); err != nil {
		t.Errorf("a network address was looked at: %v", err)
	}
}
