package verify

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Nova keeps at most 4 chunks of 255 characters of the encrypted password.
const maxPasswordLength = 4 * 255

// metadataServer serves the instance's metadata the way the cloud's
// metadata service does: the OpenStack API (with the password endpoint
// cloudbase-init posts the encrypted admin password to) or MAAS's.
type metadataServer struct {
	Mode     string
	Metadata Metadata
	MAC      string

	mu       sync.Mutex
	password string // base64, as posted
	requests []string
	listener net.Listener
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// Start listens on 127.0.0.1. The guest reaches the server through QEMU's
// guestfwd, which connects once, when QEMU starts, and carries every
// connection the guest opens to the metadata address over that one
// stream, one after the other. So the server reads requests off each
// connection in turn and never closes one itself, whatever the request's
// Connection header says: closing would end the guest's access for good.
func (s *metadataServer) Start() (port int, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	s.listener = l
	s.conns = map[net.Conn]bool{}
	s.wg.Add(1)
	go s.accept()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *metadataServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveStream(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// serveStream answers the requests on c until the peer closes it.
func (s *metadataServer) serveStream(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			}
			return
		}
		w := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		s.ServeHTTP(w, req)
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
		resp := &http.Response{StatusCode: w.code, ProtoMajor: 1, ProtoMinor: 1, Header: w.header,
			ContentLength: int64(w.body.Len()), Body: io.NopCloser(&w.body), Request: req}
		if req.Method == http.MethodHead {
			resp.Body = http.NoBody
		}
		if err := resp.Write(c); err != nil {
			return
		}
	}
}

// bufferedResponse collects a handler's response, so that it is sent
// with its length.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) { b.wrote = true; return b.body.Write(p) }

func (s *metadataServer) Stop() {
	if s.listener == nil {
		return
	}
	_ = s.listener.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// PostedPassword is the base64 ciphertext the guest posted, "" if none.
func (s *metadataServer) PostedPassword() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.password
}

// Requests are "METHOD path" of every request, in order.
func (s *metadataServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *metadataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	if s.Mode == ModeMAAS {
		s.serveMAAS(w, r)
		return
	}
	s.serveOpenStack(w, r)
}

// openStackVersions are the dated versions Nova's metadata API lists.
var openStackVersions = []string{"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "latest"}

func (s *metadataServer) serveOpenStack(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/openstack" {
		_, _ = io.WriteString(w, strings.Join(openStackVersions, "\n"))
		return
	}
	rest, ok := strings.CutPrefix(path, "/openstack/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	version, file, _ := strings.Cut(rest, "/")
	known := false
	for _, v := range openStackVersions {
		known = known || v == version
	}
	if !known {
		http.NotFound(w, r)
		return
	}
	if file == "password" {
		s.servePassword(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	files, err := ConfigDriveFiles(s.Metadata, s.MAC)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if file == "" {
		var names []string
		for name := range files {
			names = append(names, strings.TrimPrefix(name, "openstack/latest/"))
		}
		names = append(names, "password")
		_, _ = io.WriteString(w, strings.Join(names, "\n"))
		return
	}
	b, ok := files["openstack/latest/"+file]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(file, ".json") {
		w.Header().Set("Content-Type", "application/json")
	}
	_, _ = w.Write(b)
}

// servePassword is Nova's password endpoint: GET returns the posted
// ciphertext, POST stores it once (409 afterwards), longer than Nova keeps
// is refused.
func (s *metadataServer) servePassword(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		_, _ = io.WriteString(w, s.password)
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxPasswordLength+1))
		if err != nil || len(b) > maxPasswordLength {
			http.Error(w, "Request is too large.", http.StatusBadRequest)
			return
		}
		if s.password != "" {
			http.Error(w, "Password already set.", http.StatusConflict)
			return
		}
		if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err != nil {
			http.Error(w, "Password is not base64.", http.StatusBadRequest)
			return
		}
		s.password = strings.TrimSpace(string(b))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// maasVersion is the metadata version cloudbase-init's MaaSHttpService
// reads (its default).
const maasVersion = "2012-03-01"

// serveMAAS answers as MAAS's metadata API does for the deployed node
// (src/metadataserver/api.py): MetaDataHandler lists its subfields
// (without public-keys when there are none) and produces each with a
// text/plain list response (make_list_response), so public-keys and x509
// answer 200 even when empty; UserDataHandler answers 404 without user
// data. cloudbase-init's MaaSHttpService reads meta-data/x509 for
// ConfigWinRMCertificateAuthPlugin (get_client_auth_certs) and raises on
// a 404, which fails that default plugin at every boot. vendor-data, a
// cloud-init document cloudbase-init does not read, is not served.
func (s *metadataServer) serveMAAS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/MAAS/metadata/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	version, rest, _ := strings.Cut(rest, "/")
	if version != maasVersion && version != "latest" {
		http.NotFound(w, r)
		return
	}
	m := s.Metadata
	var keys []string
	for _, k := range m.PublicKeys {
		keys = append(keys, strings.TrimSpace(k))
	}
	sort.Strings(keys)
	text := func(body string) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	}
	switch rest {
	case "meta-data", "meta-data/":
		fields := []string{"instance-id", "local-hostname"}
		if len(keys) > 0 {
			fields = append(fields, "public-keys")
		}
		text(strings.Join(append(fields, "x509"), "\n"))
	case "meta-data/instance-id":
		text(m.UUID)
	case "meta-data/local-hostname":
		text(m.Hostname)
	case "meta-data/public-keys":
		text(strings.Join(keys, "\n"))
	case "meta-data/x509":
		// The owner's SSL keys: none.
		text("")
	case "user-data":
		if len(m.UserData) == 0 {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(m.UserData)
	default:
		http.NotFound(w, r)
	}
}
