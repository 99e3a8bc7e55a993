package winsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The metadata services the model covers, as the plugins call them:
// metadata/services/base.py BaseMetadataService and the subclasses named
// on each method.
type cloudbaseService interface {
	name() string
	// instanceID is get_instance_id; ok is false for None.
	instanceID(ctx context.Context) (id string, ok bool, err error)
	hostName(ctx context.Context) (string, error)
	// publicKeys is get_public_keys.
	publicKeys(ctx context.Context) ([]string, error)
	adminUsername(ctx context.Context) (string, error)
	adminPassword(ctx context.Context) (string, error)
	// userData is get_decoded_user_data (gzip unpacked).
	userData(ctx context.Context) ([]byte, error)
	clientAuthCerts(ctx context.Context) ([]string, error)
	canPostPassword(ctx context.Context) (bool, error)
	isPasswordSet(ctx context.Context) (bool, error)
	postPassword(ctx context.Context, b64 string) error
}

// cloudbaseNotExisting is base.NotExistingMetadataException: the item
// is not in the metadata (a missing file, HTTP 404).
type cloudbaseNotExisting struct{ what string }

func (e *cloudbaseNotExisting) Error() string { return e.what }

func isNotExisting(err error) bool {
	var ne *cloudbaseNotExisting
	return errors.As(err, &ne)
}

// x509constants.py.
const (
	pemHeader = "-----BEGIN CERTIFICATE-----"
	pemFooter = "-----END CERTIFICATE-----"
)

// --- HTTP, as base.py BaseHTTPMetadataService requests it ------------------------

// cloudbaseHTTP is the HTTP side of BaseHTTPMetadataService with
// BaseMetadataService's retry and cache.
type cloudbaseHTTP struct {
	base     string // the configured URL, as the log lines name it
	baseURL  *url.URL
	client   *http.Client
	clock    Clock
	log      *cloudbaseLog
	retries  int
	interval time.Duration
	// sign adds headers to each request (MaaSHttpService's OAuth).
	sign  func(req *http.Request)
	cache map[string][]byte
}

func newCloudbaseHTTP(m *Machine, base string, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) (*cloudbaseHTTP, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		m.unsupportedf("cloudbase-init metadata URL %q: only http:// is modelled", base)
		return nil, fmt.Errorf("the metadata URL %s is not modelled by the stand-in", base)
	}
	return &cloudbaseHTTP{base: base, baseURL: u, client: run.HTTPClient, clock: m.clock, log: l,
		retries: conf.integer("retry_count"), interval: conf.seconds("retry_count_interval"), cache: map[string][]byte{}}, nil
}

// cloudbaseHTTPError is requests' HTTPError from raise_for_status.
type cloudbaseHTTPError struct {
	code int
	url  string
}

func (e *cloudbaseHTTPError) Error() string {
	kind := "Client"
	if e.code >= 500 {
		kind = "Server"
	}
	return fmt.Sprintf("%d %s Error: %s for url: %s", e.code, kind, http.StatusText(e.code), e.url)
}

// resolve is requests.compat.urljoin(base_url, path) (RFC 3986
// resolution: a base without a trailing slash loses its last segment).
func (h *cloudbaseHTTP) resolve(path string) string {
	ref, err := url.Parse(path)
	if err != nil {
		return h.base + path
	}
	return h.baseURL.ResolveReference(ref).String()
}

// request is _http_request: raise_for_status turns 4xx and 5xx into
// an HTTPError.
func (h *cloudbaseHTTP) request(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	u := h.resolve(path)
	h.log.log("DEBUG", "cloudbaseinit.metadata.services.base", "Executing http request %s at %s", method, u)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if h.sign != nil {
		h.sign(req)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return nil, &cloudbaseHTTPError{code: resp.StatusCode, url: u}
	}
	return b, nil
}

// getData is _get_data: 404 is NotExistingMetadataException; a
// connection error is logged (LOG.exception) and raised.
func (h *cloudbaseHTTP) getData(ctx context.Context, path string) ([]byte, error) {
	b, err := h.request(ctx, http.MethodGet, path, nil)
	var he *cloudbaseHTTPError
	switch {
	case errors.As(err, &he) && he.code == http.StatusNotFound:
		return nil, &cloudbaseNotExisting{what: err.Error()}
	case err != nil && !errors.As(err, &he):
		h.log.log("ERROR", "cloudbaseinit.metadata.services.base", "%s", err)
	}
	return b, err
}

// retry is _exec_with_retry: NotExistingMetadataException at once, any
// other error retried retry_count times, retry_count_interval apart.
func (h *cloudbaseHTTP) retry(ctx context.Context, action func() ([]byte, error)) ([]byte, error) {
	for i := 0; ; i++ {
		b, err := action()
		if err == nil || isNotExisting(err) || ctx.Err() != nil || i >= h.retries {
			return b, err
		}
		if err := sleep(ctx, h.clock, h.interval); err != nil {
			return nil, err
		}
	}
}

// cached is _get_cache_data.
func (h *cloudbaseHTTP) cached(ctx context.Context, path string) ([]byte, error) {
	if b, ok := h.cache[path]; ok {
		h.log.log("DEBUG", "cloudbaseinit.metadata.services.base", "Using cached copy of metadata: '%s'", path)
		return b, nil
	}
	b, err := h.retry(ctx, func() ([]byte, error) { return h.getData(ctx, path) })
	if err == nil {
		h.cache[path] = b
	}
	return b, err
}

// --- OpenStack: ConfigDriveService and HttpService --------------------------------

// openStackService is baseopenstackservice.py BaseOpenStackService over
// a config drive's files or the metadata API.
type openStackService struct {
	svcName string
	// get reads a metadata path ("openstack/latest/meta_data.json").
	get  func(ctx context.Context, path string) ([]byte, error)
	http *cloudbaseHTTP // HttpService only
	meta map[string]map[string]any
}

func (s *openStackService) name() string { return s.svcName }

// metaData is _get_meta_data(version): the JSON document, cached.
func (s *openStackService) metaData(ctx context.Context, version string) (map[string]any, error) {
	if md, ok := s.meta[version]; ok {
		return md, nil
	}
	b, err := s.get(ctx, "openstack/"+version+"/meta_data.json")
	if err != nil {
		return nil, err
	}
	var md map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &md); err != nil {
			return nil, fmt.Errorf("openstack/%s/meta_data.json: %w", version, err)
		}
	}
	if md == nil {
		md = map[string]any{}
	}
	s.meta[version] = md
	return md, nil
}

func (s *openStackService) latestString(ctx context.Context, key string) (string, bool, error) {
	md, err := s.metaData(ctx, "latest")
	if err != nil {
		return "", false, err
	}
	v, ok := md[key].(string)
	return v, ok, nil
}

func (s *openStackService) instanceID(ctx context.Context) (string, bool, error) {
	return s.latestString(ctx, "uuid")
}

func (s *openStackService) hostName(ctx context.Context) (string, error) {
	v, _, err := s.latestString(ctx, "hostname")
	return v, err
}

// publicKeys is get_public_keys: public_keys' values and the data of the
// ssh entries of keys, stripped, without duplicates (a Python set: the
// order is not defined; the model sorts them).
func (s *openStackService) publicKeys(ctx context.Context) ([]string, error) {
	md, err := s.metaData(ctx, "latest")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	if pk, ok := md["public_keys"].(map[string]any); ok {
		for _, v := range pk {
			if k, ok := v.(string); ok {
				seen[strings.TrimSpace(k)] = true
			}
		}
	}
	if keys, ok := md["keys"].([]any); ok {
		for _, k := range keys {
			km, _ := k.(map[string]any)
			t, ok := km["type"].(string)
			if !ok {
				return nil, errors.New("KeyError: 'type'")
			}
			if d, ok := km["data"].(string); ok && t == "ssh" {
				seen[strings.TrimSpace(d)] = true
			}
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// adminUsername is get_admin_username: meta.admin_username.
func (s *openStackService) adminUsername(ctx context.Context) (string, error) {
	md, err := s.metaData(ctx, "latest")
	if err != nil {
		return "", err
	}
	meta, _ := md["meta"].(map[string]any)
	v, _ := meta["admin_username"].(string)
	return v, nil
}

// adminPassword is get_admin_password: meta.admin_pass, else admin_pass.
func (s *openStackService) adminPassword(ctx context.Context) (string, error) {
	md, err := s.metaData(ctx, "latest")
	if err != nil {
		return "", err
	}
	if meta, ok := md["meta"].(map[string]any); ok {
		if v, ok := meta["admin_pass"]; ok {
			p, _ := v.(string)
			return p, nil
		}
	}
	p, _ := md["admin_pass"].(string)
	return p, nil
}

func (s *openStackService) userData(ctx context.Context) ([]byte, error) {
	b, err := s.get(ctx, "openstack/latest/user_data")
	if err != nil {
		return nil, err
	}
	return gunzipIfGzip(b)
}

// clientAuthCerts is get_client_auth_certs: meta.admin_cert0, 1, ...
// joined, the x509 entries of keys, else user data that is a PEM
// certificate.
func (s *openStackService) clientAuthCerts(ctx context.Context) ([]string, error) {
	md, err := s.metaData(ctx, "latest")
	if err != nil {
		return nil, err
	}
	var certs []string
	if meta, ok := md["meta"].(map[string]any); ok {
		var chunks []string
		for i := 0; ; i++ {
			c, _ := meta[fmt.Sprintf("admin_cert%d", i)].(string)
			if c == "" {
				break
			}
			chunks = append(chunks, c)
		}
		if len(chunks) > 0 {
			certs = append(certs, strings.Join(chunks, ""))
		}
	}
	if keys, ok := md["keys"].([]any); ok {
		for _, k := range keys {
			km, _ := k.(map[string]any)
			if km["type"] == "x509" {
				d, _ := km["data"].(string)
				certs = append(certs, d)
			}
		}
	}
	if len(certs) == 0 {
		ud, err := s.get(ctx, "openstack/latest/user_data")
		switch {
		case isNotExisting(err):
			return nil, nil
		case err != nil:
			return nil, err
		}
		if ud = bytes.TrimSpace(ud); bytes.HasPrefix(ud, []byte(pemHeader)) {
			certs = append(certs, string(ud))
		}
	}
	return uniqueStripped(certs), nil
}

// canPostPassword is HttpService.can_post_password: the 2013-04-04
// metadata exists. ConfigDriveService cannot (base.py: False).
func (s *openStackService) canPostPassword(ctx context.Context) (bool, error) {
	if s.http == nil {
		return false, nil
	}
	_, err := s.metaData(ctx, cloudbasePostPasswordVersion)
	switch {
	case isNotExisting(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// isPasswordSet is HttpService.is_password_set: the password path holds
// something (read without retry or cache).
func (s *openStackService) isPasswordSet(ctx context.Context) (bool, error) {
	if s.http == nil {
		return false, nil
	}
	b, err := s.http.getData(ctx, cloudbasePasswordPath)
	return len(b) > 0, err
}

// postPassword is HttpService.post_password: a POST with retry. Its
// "except error.HTTPError" (urllib's) never matches the requests
// HTTPError a 409 raises, so a 409 fails the plugin like any error.
func (s *openStackService) postPassword(ctx context.Context, b64 string) error {
	if s.http == nil {
		return errors.New("the service cannot take a password")
	}
	_, err := s.http.retry(ctx, func() ([]byte, error) {
		s.http.log.log("DEBUG", "cloudbaseinit.metadata.services.base", "Posting data to %s", s.http.resolve(cloudbasePasswordPath))
		return s.http.request(ctx, http.MethodPost, cloudbasePasswordPath, []byte(b64))
	})
	return err
}

// HttpService's _POST_PASSWORD_MD_VER and _get_password_path.
const (
	cloudbasePostPasswordVersion = "2013-04-04"
	cloudbasePasswordPath        = "openstack/" + cloudbasePostPasswordVersion + "/password"
)

// cloudbaseHTTPService is httpservice.py HttpService.load: the metadata
// at [openstack] metadata_base_url; any error means not found. (Its
// check_metadata_ip_route adds a route to 169.254.169.254 where the
// network lacks one; the stand-in's network does not.)
func (m *Machine) cloudbaseHTTPService(ctx context.Context, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) (cloudbaseService, error) {
	base := conf.str("openstack.metadata_base_url")
	h, err := newCloudbaseHTTP(m, base, conf, run, l)
	if err != nil {
		return nil, err
	}
	s := &openStackService{svcName: "HttpService", http: h, get: h.cached, meta: map[string]map[string]any{}}
	if _, err := s.metaData(ctx, "latest"); err != nil {
		l.log("DEBUG", "cloudbaseinit.metadata.services.httpservice", "Metadata not found at URL '%s'", base)
		return nil, nil
	}
	return s, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func sortedKeys(set map[string]bool) []string {
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// uniqueStripped is list(set(x.strip() for x in values)), sorted.
func uniqueStripped(values []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range values {
		if v = strings.TrimSpace(v); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
