// Package maasserver is an in-process MAAS region API 2.0 for tests: the
// boot-resource calls winbake-maas makes, with the validation, status codes
// and error texts of MAAS (maasserver/forms BootResourceForm and
// BootResourceNoContentForm, api/boot_resources.py and its upload handler),
// OAuth 1.0 PLAINTEXT checking, and fault injection.
//
// It keeps everything in memory. Start it with New; tests read what happened
// through Resources, Content, Chunks and Requests.
package maasserver

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Key is one MAAS API key.
type Key struct {
	Consumer, Token, Secret string
	// Admin users may create and upload boot resources; others get 403.
	Admin bool
}

// String is the key as MAAS prints it: consumer:token:secret.
func (k Key) String() string { return k.Consumer + ":" + k.Token + ":" + k.Secret }

// Options configure a Server.
type Options struct {
	// Keys accepted by the server. Default: one admin key, see AdminKey.
	Keys []Key
	// Architectures usable for uploads. Default: amd64/generic, amd64/hwe-22.04, arm64/generic.
	Architectures []string
	// PollsUntilComplete is how many GETs of a resource report a fully
	// uploaded set as still incomplete (MAAS >= 3.5 copies it to region
	// storage first). Zero: complete at once.
	PollsUntilComplete int
	// FailChunk makes the upload PUT number FailChunk (1-based, counted per
	// file) fail with FailStatus (default 500) before storing anything.
	FailChunk  int
	FailStatus int
	// ResetChunk makes the upload PUT number ResetChunk close the connection
	// after reading half of the body.
	ResetChunk int
	// StallChunk makes the upload PUT number StallChunk read half of the
	// body and then neither read nor answer until the client goes away, as
	// a region whose storage hangs.
	StallChunk int
	// CorruptChunk flips a bit in the body of upload PUT number CorruptChunk
	// as if it was damaged on the way; MAAS notices at the last byte.
	CorruptChunk int
	// TimestampSkew is the accepted distance of oauth_timestamp from the
	// server clock. Default 300 s.
	TimestampSkew time.Duration
	// Prefix is the MAAS URL path. Default "/MAAS/".
	Prefix string
	// OnChunk, when set, runs for every upload PUT (n counts per file, from
	// 1) before its body is read, e.g. to interrupt a client mid-upload.
	OnChunk func(n int, r *http.Request)
	// TLS serves https with a certificate from a test CA; see CACertPEM.
	TLS bool
}

// DefaultAdminKey is the admin key used when Options.Keys is empty.
var DefaultAdminKey = Key{Consumer: "Cq8Rk2vYVx4wTHZf9e", Token: "aW3Dk9pNb7XzQ5uLfE", Secret: "s3cr3tTokenSecretValueNeverLogged", Admin: true}

// Request is one request the server received.
type Request struct {
	Method, Path string
	// Status is the status code answered.
	Status int
	// Nonce and Timestamp are the OAuth values of the request, if any.
	Nonce, Timestamp string
}

// Server is a running fake MAAS.
type Server struct {
	*httptest.Server
	opts Options

	mu        sync.Mutex
	resources map[int]*resource
	nextID    int
	nextFile  int
	nonces    map[string]bool
	requests  []Request
	chunks    map[int][]int // file id -> sizes of accepted and rejected PUT bodies, in order
	puts      map[int]int   // file id -> PUTs received
	stalled   []net.Conn    // connections of StallChunk, closed by Close
}

// Close closes the connections held by StallChunk and shuts the server
// down.
func (s *Server) Close() {
	s.mu.Lock()
	stalled := s.stalled
	s.stalled = nil
	s.mu.Unlock()
	for _, c := range stalled {
		_ = c.Close()
	}
	s.Server.Close()
}

type resource struct {
	id                int
	name, arch, title string
	sets              []*resourceSet
}

type resourceSet struct {
	version string
	files   []*resourceFile
	polls   int // GETs seen since the set's files became complete
}

type resourceFile struct {
	id       int
	filetype string // upload filetype, e.g. ddgz
	stored   string // BOOT_RESOURCE_FILE_TYPE, e.g. root-dd.gz
	filename string // file name: the stored filetype, root.tgz for root-tgz
	sha256   string
	size     int64
	received int64
	hash     hash.Hash
	content  []byte
	complete bool
}

// storedFiletype maps the upload filetype choices of MAAS to the stored
// BOOT_RESOURCE_FILE_TYPE, which is also the file name.
var storedFiletype = map[string]string{
	"tgz": "root-tgz", "tbz": "root-tbz", "txz": "root-txz",
	"ddtgz": "root-dd", "ddtbz": "root-dd.tar.bz2", "ddtxz": "root-dd.tar.xz", "ddtar": "root-dd.tar",
	"ddbz2": "root-dd.bz2", "ddgz": "root-dd.gz", "ddxz": "root-dd.xz", "ddraw": "root-dd.raw",
}

// uploadFilename is get_uploaded_filename: root tarballs get an extension.
var uploadFilename = map[string]string{"root-tgz": "root.tgz", "root-tbz": "root.tbz", "root-txz": "root.txz"}

// osystems are the registered OS drivers of MAAS.
var osystems = []string{"ubuntu", "centos", "rhel", "custom", "windows", "suse", "ol", "esxi"}

// New starts a fake MAAS on a loopback port. Close it when done.
func New(opts Options) *Server {
	if len(opts.Keys) == 0 {
		opts.Keys = []Key{DefaultAdminKey}
	}
	if len(opts.Architectures) == 0 {
		opts.Architectures = []string{"amd64/generic", "amd64/hwe-22.04", "arm64/generic"}
	}
	if opts.TimestampSkew == 0 {
		opts.TimestampSkew = 300 * time.Second
	}
	if opts.FailStatus == 0 {
		opts.FailStatus = http.StatusInternalServerError
	}
	if opts.Prefix == "" {
		opts.Prefix = "/MAAS/"
	}
	s := &Server{opts: opts, resources: map[int]*resource{}, nextID: 1, nextFile: 1,
		nonces: map[string]bool{}, chunks: map[int][]int{}, puts: map[int]int{}}
	if opts.TLS {
		s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	} else {
		s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	}
	return s
}

// CACertPEM is the PEM certificate a client must trust to reach a TLS
// server.
func (s *Server) CACertPEM() []byte {
	if s.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// FailChunkFromNowOn sets Options.FailChunk (and FailStatus, 0 for 500)
// for the uploads that follow.
func (s *Server) FailChunkFromNowOn(chunk, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.opts.FailChunk, s.opts.FailStatus = chunk, status
}

// MAASURL is the URL a client is configured with, e.g. http://127.0.0.1:1234/MAAS.
func (s *Server) MAASURL() string { return s.URL + strings.TrimSuffix(s.opts.Prefix, "/") }

var (
	reResources = regexp.MustCompile(`^api/2\.0/boot-resources/$`)
	reResource  = regexp.MustCompile(`^api/2\.0/boot-resources/(\d+)/$`)
	reUpload    = regexp.MustCompile(`^api/2\.0/boot-resources/(\d+)/upload/(\d+)/$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &Request{Method: r.Method, Path: r.URL.Path}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		rec.Status = sw.status
		s.mu.Lock()
		s.requests = append(s.requests, *rec)
		s.mu.Unlock()
	}()

	path, ok := strings.CutPrefix(r.URL.Path, s.opts.Prefix)
	if !ok {
		http.NotFound(sw, r)
		return
	}
	key, status, msg := s.authenticate(r, rec)
	if status != 0 {
		sw.Header().Set("WWW-Authenticate", `OAuth realm="OAuth"`)
		text(sw, status, msg)
		return
	}
	switch {
	case reResources.MatchString(path):
		switch r.Method {
		case http.MethodGet:
			s.list(sw, r)
		case http.MethodPost:
			if op := r.URL.Query().Get("op"); op != "" {
				text(sw, http.StatusBadRequest, fmt.Sprintf("Unrecognised signature: method=POST op=%s", op))
				return
			}
			if !key.Admin {
				text(sw, http.StatusForbidden, "You do not have permission to access this resource.")
				return
			}
			s.create(sw, r)
		default:
			text(sw, http.StatusMethodNotAllowed, "Method Not Allowed")
		}
	case reResource.MatchString(path):
		id, _ := strconv.Atoi(reResource.FindStringSubmatch(path)[1])
		switch r.Method {
		case http.MethodGet:
			s.get(sw, id)
		case http.MethodDelete:
			if !key.Admin {
				text(sw, http.StatusForbidden, "You do not have permission to access this resource.")
				return
			}
			s.delete(sw, id)
		default:
			text(sw, http.StatusMethodNotAllowed, "Method Not Allowed")
		}
	case reUpload.MatchString(path):
		m := reUpload.FindStringSubmatch(path)
		id, _ := strconv.Atoi(m[1])
		fileID, _ := strconv.Atoi(m[2])
		if r.Method != http.MethodPut {
			text(sw, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		if !key.Admin {
			text(sw, http.StatusForbidden, "You do not have permission to access this resource.")
			return
		}
		s.upload(sw, r, id, fileID)
	default:
		text(sw, http.StatusNotFound, "Unknown API endpoint: "+r.URL.Path+".")
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authenticate checks the OAuth 1.0 PLAINTEXT header. It returns the key, or
// a status and message to answer with.
func (s *Server) authenticate(r *http.Request, rec *Request) (Key, int, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Key{}, http.StatusUnauthorized, "Authorization Error: No authorization header provided."
	}
	rest, ok := strings.CutPrefix(h, "OAuth ")
	if !ok {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Authorization header is not OAuth."
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Key{}, http.StatusUnauthorized, "Authorization Error: Malformed OAuth header."
		}
		uq, err := strconv.Unquote(v)
		if err != nil {
			return Key{}, http.StatusUnauthorized, "Authorization Error: Malformed OAuth header."
		}
		dec, err := url.PathUnescape(uq)
		if err != nil {
			return Key{}, http.StatusUnauthorized, "Authorization Error: Malformed OAuth header."
		}
		params[k] = dec
	}
	rec.Nonce, rec.Timestamp = params["oauth_nonce"], params["oauth_timestamp"]
	if m := params["oauth_signature_method"]; m != "PLAINTEXT" {
		return Key{}, http.StatusUnauthorized, fmt.Sprintf("Authorization Error: Signature method '%s' not supported.", m)
	}
	if v, ok := params["oauth_version"]; ok && v != "1.0" {
		return Key{}, http.StatusUnauthorized, fmt.Sprintf("Authorization Error: OAuth version '%s' not supported.", v)
	}
	var key Key
	found := false
	for _, k := range s.opts.Keys {
		if k.Consumer == params["oauth_consumer_key"] {
			key, found = k, true
			break
		}
	}
	if !found {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Invalid consumer."
	}
	if key.Token != params["oauth_token"] {
		return Key{}, http.StatusUnauthorized, fmt.Sprintf("Authorization Error: Invalid access token: %s", params["oauth_token"])
	}
	if params["oauth_signature"] != "&"+key.Secret {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Invalid signature."
	}
	ts, err := strconv.ParseInt(params["oauth_timestamp"], 10, 64)
	if err != nil {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Missing or invalid oauth_timestamp."
	}
	if d := time.Since(time.Unix(ts, 0)); d > s.opts.TimestampSkew || -d > s.opts.TimestampSkew {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Expired timestamp."
	}
	nonce := params["oauth_nonce"]
	if nonce == "" {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Missing oauth_nonce."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := key.Token + "\x00" + params["oauth_timestamp"] + "\x00" + nonce
	if s.nonces[seen] {
		return Key{}, http.StatusUnauthorized, "Authorization Error: Nonce already used."
	}
	s.nonces[seen] = true
	return key, 0, ""
}

// formValues reads a multipart or urlencoded body.
func formValues(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, err
		}
		if len(r.MultipartForm.File) > 0 {
			// Only the chunked path is modelled; inline content is what
			// winbake must never send.
			return nil, fmt.Errorf("inline content upload is not supported by this server")
		}
		return url.Values(r.MultipartForm.Value), nil
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm, nil
	}
	return url.Values{}, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	form, err := formValues(r)
	if err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	errs := map[string][]string{}
	add := func(field, msg string) { errs[field] = append(errs[field], msg) }
	const required = "This field is required."

	name := form.Get("name")
	if name == "" {
		add("name", required)
	} else if strings.Count(name, "/") > 1 {
		// MAAS unpacks name.split("/") into two values: a ValueError.
		text(w, http.StatusInternalServerError, "Internal server error.")
		return
	} else if os, release, ok := strings.Cut(name, "/"); ok {
		if os == "custom" {
			name = release
		} else if !contains(osystems, os) {
			add("name", fmt.Sprintf("Unsupport operating system %s, supported operating systems: [%s]", os, pyList(osystems)))
		}
	}
	if _, has := errs["name"]; !has && name != "" && (contains(osystems, name) || regexp.MustCompile(`^centos\d\d?$`).MatchString(name)) {
		add("name", name+" is a reserved name")
	}

	arch := form.Get("architecture")
	switch {
	case arch == "":
		add("architecture", required)
	case !contains(s.opts.Architectures, arch):
		quoted := make([]string, len(s.opts.Architectures))
		for i, a := range s.opts.Architectures {
			quoted[i] = "'" + a + "'"
		}
		add("architecture", fmt.Sprintf("'%s' is not a valid architecture.  It should be one of: %s.", arch, strings.Join(quoted, ", ")))
	}

	filetype := form.Get("filetype")
	if _, has := form["filetype"]; !has {
		filetype = "tgz"
	}
	if filetype == "" {
		add("filetype", required)
	} else if _, ok := storedFiletype[filetype]; !ok {
		add("filetype", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", filetype))
	}

	sum := form.Get("sha256")
	switch n := len([]rune(sum)); {
	case sum == "":
		add("sha256", required)
	case n < 64:
		add("sha256", fmt.Sprintf("Ensure this value has at least 64 characters (it has %d).", n))
	case n > 64:
		add("sha256", fmt.Sprintf("Ensure this value has at most 64 characters (it has %d).", n))
	}

	var size int64
	if v := strings.TrimSpace(form.Get("size")); v == "" {
		add("size", required)
	} else if size, err = strconv.ParseInt(v, 10, 64); err != nil {
		add("size", "Enter a whole number.")
	}

	keepOld := false
	switch strings.ToLower(form.Get("keep_old")) {
	case "", "false", "0", "off":
	default:
		keepOld = true
	}

	// A custom/ (or slash-less) name needs a Linux base image; windows/ names
	// ignore base_image.
	if os, _, ok := strings.Cut(form.Get("name"), "/"); !ok || os == "custom" {
		if bi := form.Get("base_image"); bi != "" {
			bos, _, ok := strings.Cut(bi, "/")
			if !ok {
				add("base_image", "a base image must follow the format: <osystem>/<series>")
			} else if !contains([]string{"ubuntu", "centos", "rhel", "ol"}, bos) {
				add("base_image", "custom images require a valid non-custom OS type base image")
			}
		}
	}

	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, errs)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, res := range s.resources {
		for _, set := range res.sets {
			for _, f := range set.files {
				if f.sha256 == sum && f.size != size {
					writeJSON(w, http.StatusBadRequest, map[string][]string{
						"__all__": {"File already exists with sha256 that is of different size."}})
					return
				}
			}
		}
	}
	var res *resource
	for _, existing := range s.resources {
		if existing.name == name && existing.arch == arch {
			res = existing
		}
	}
	if res == nil {
		res = &resource{id: s.nextID, name: name, arch: arch}
		s.resources[res.id] = res
		s.nextID++
	}
	res.title = form.Get("title")
	set := &resourceSet{version: nextVersion(res, time.Now())}
	stored := storedFiletype[filetype]
	f := &resourceFile{id: s.nextFile, filetype: filetype, stored: stored, filename: stored, sha256: sum, size: size, hash: sha256.New()}
	if fn, ok := uploadFilename[stored]; ok {
		f.filename = fn
	}
	s.nextFile++
	// The same content stored before (same sha256 and size) is complete
	// at once.
	for _, other := range s.resources {
		for _, os := range other.sets {
			for _, of := range os.files {
				if of.complete && of.sha256 == sum {
					f.complete, f.received, f.content = true, size, of.content
				}
			}
		}
	}
	set.files = []*resourceFile{f}
	res.sets = append(res.sets, set)
	if !keepOld {
		// LP:1660418: older sets of an uploaded resource go.
		res.sets = []*resourceSet{set}
	}
	writeJSON(w, http.StatusCreated, s.resourceJSON(res, true))
}

// nextVersion is BootResource.get_next_version_name: today's YYYYmmdd, then
// YYYYmmdd.1, .2, ... when taken.
func nextVersion(res *resource, now time.Time) string {
	base := now.UTC().Format("20060102")
	taken := map[string]bool{}
	for _, set := range res.sets {
		taken[set.version] = true
	}
	v := base
	for i := 1; taken[v]; i++ {
		v = fmt.Sprintf("%s.%d", base, i)
	}
	return v
}

func (s *Server) resourceJSON(res *resource, withSets bool) map[string]any {
	subarch := ""
	if _, sa, ok := strings.Cut(res.arch, "/"); ok {
		subarch = sa
	}
	out := map[string]any{
		"id": res.id, "type": "Uploaded", "name": res.name, "architecture": res.arch,
		"resource_uri": fmt.Sprintf("%sapi/2.0/boot-resources/%d/", s.opts.Prefix, res.id),
		"subarches":    subarch, "title": res.title,
	}
	if !withSets {
		return out
	}
	sets := map[string]any{}
	for _, set := range res.sets {
		files := map[string]any{}
		var total, got int64
		complete := true
		for _, f := range set.files {
			fileComplete := f.complete && set.polls >= s.opts.PollsUntilComplete
			files[f.filename] = map[string]any{
				"filename": f.filename, "filetype": f.stored, "sha256": f.sha256, "size": f.size,
				"complete": fileComplete, "progress": progress(f.received, f.size),
				"upload_uri": fmt.Sprintf("%sapi/2.0/boot-resources/%d/upload/%d/", s.opts.Prefix, res.id, f.id),
			}
			total += f.size
			got += f.received
			complete = complete && fileComplete
		}
		sets[set.version] = map[string]any{
			"version": set.version, "label": "uploaded", "size": total,
			"complete": complete, "progress": progress(got, total), "files": files,
		}
	}
	out["sets"] = sets
	return out
}

func progress(got, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(got) * 100 / float64(total)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	if typ == "" || typ == "all" || typ == "uploaded" {
		for _, id := range s.sortedIDs() {
			out = append(out, s.resourceJSON(s.resources[id], false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, ok := s.resources[id]
	if !ok {
		text(w, http.StatusNotFound, "No BootResource matches the given query.")
		return
	}
	body := s.resourceJSON(res, true)
	for _, set := range res.sets {
		done := true
		for _, f := range set.files {
			done = done && f.complete
		}
		if done {
			set.polls++
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) delete(w http.ResponseWriter, id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.resources[id]; !ok {
		text(w, http.StatusNotFound, "No BootResource matches the given query.")
		return
	}
	delete(s.resources, id)
	w.WriteHeader(http.StatusNoContent)
}

// upload is BootResourceFileUploadHandler.update.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, id, fileID int) {
	s.mu.Lock()
	s.puts[fileID]++
	n := s.puts[fileID]
	opts := s.opts
	res, ok := s.resources[id]
	var f *resourceFile
	if ok {
		for _, set := range res.sets {
			for _, cand := range set.files {
				if cand.id == fileID {
					f = cand
				}
			}
		}
	}
	s.mu.Unlock()
	if f == nil {
		text(w, http.StatusNotFound, "No BootResourceFile matches the given query.")
		return
	}

	if opts.OnChunk != nil {
		opts.OnChunk(n, r)
	}
	if n == opts.StallChunk {
		_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				// Held, unread and unanswered, until Close.
				s.mu.Lock()
				s.stalled = append(s.stalled, conn)
				s.mu.Unlock()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if n == opts.ResetChunk {
		_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		text(w, http.StatusBadRequest, "Missing data.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks[fileID] = append(s.chunks[fileID], len(body))
	if n == opts.FailChunk {
		text(w, opts.FailStatus, "Internal server error.")
		return
	}
	if n == opts.CorruptChunk && len(body) > 0 {
		body[len(body)/2] ^= 0x40
	}
	if len(body) == 0 {
		text(w, http.StatusBadRequest, "Missing data.")
		return
	}
	if r.ContentLength != int64(len(body)) {
		text(w, http.StatusBadRequest, "Content-Length doesn't equal size of received data.")
		return
	}
	if f.complete {
		text(w, http.StatusBadRequest, "Cannot upload to a complete file.")
		return
	}
	if f.received+int64(len(body)) > f.size {
		text(w, http.StatusBadRequest, "Too much data received.")
		return
	}
	f.hash.Write(body)
	f.content = append(f.content, body...)
	f.received += int64(len(body))
	if f.received == f.size {
		if hex.EncodeToString(f.hash.Sum(nil)) != f.sha256 {
			// MAAS deletes the stored content; the file starts over empty.
			f.received, f.content, f.hash = 0, nil, sha256.New()
			text(w, http.StatusBadRequest, "Saved content does not match given SHA256 value.")
			return
		}
		f.complete = true
	}
	text(w, http.StatusOK, "OK")
}

func (s *Server) sortedIDs() []int {
	ids := make([]int, 0, len(s.resources))
	for id := range s.resources {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// pyList renders names like Python's repr of a list of strings, without
// the brackets.
func pyList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, ", ")
}
