package updates

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// packageServer serves exactly the build's packages over HTTP, each under
// /<token>/<n>/<file name> with a random per-build token, so nothing else
// on the host is reachable and the URLs cannot be guessed.
type packageServer struct {
	srv   *http.Server
	ln    net.Listener
	token string
	ui    packersdk.Ui // progress bars, nil for none

	mu    sync.Mutex
	paths map[string]*Package
}

func startServer(bind string, pkgs []*Package, ui packersdk.Ui) (*packageServer, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := &packageServer{token: hex.EncodeToString(b), ui: ui, paths: map[string]*Package{}}
	for i, p := range pkgs {
		s.paths[s.path(i, p)] = p
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		return nil, fmt.Errorf("package server: listening on %s: %w", bind, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = s.srv.Serve(ln) }() // ends with http.ErrServerClosed when the server is closed
	return s, nil
}

func (s *packageServer) path(i int, p *Package) string {
	return "/" + s.token + "/" + strconv.Itoa(i) + "/" + p.Name
}

// URL is the address of package i for a guest that reaches the host at hostIP.
func (s *packageServer) URL(hostIP string, i int, p *Package) string {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return "http://" + net.JoinHostPort(hostIP, port) + s.path(i, p)
}

func (s *packageServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	p := s.paths[r.URL.Path]
	s.mu.Unlock()
	if p == nil {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(p.LocalPath)
	if err != nil {
		http.Error(w, "cannot open the package", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(p.Size, 10))
	if r.Method == http.MethodHead {
		return
	}
	// The file goes to the socket in pieces, each one a sendfile(2) (net/http
	// hands an *os.File, or a limited one, to the connection's ReadFrom), so
	// its bytes never pass through the plugin; progress is counted between
	// pieces.
	add := func(int64) {}
	if s.ui != nil {
		var done func()
		add, done = progress.Counter(s.ui, p.Name, p.Size)
		defer done()
	}
	for {
		n, err := io.CopyN(w, f, servePiece)
		add(n)
		if err != nil {
			return
		}
	}
}

// servePiece is how much of a package goes out between progress updates.
const servePiece = 16 << 20

func (s *packageServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	return err
}
