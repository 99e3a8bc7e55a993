// Package maasapi is a small client for the parts of the MAAS API 2.0 that
// publish an uploaded boot resource: create, chunked content upload, read,
// list and delete. No kept Go library can upload boot resources
// (gomaasclient's BootResources.Create is not implemented), so this talks
// to MAAS with net/http.
//
// Every request carries an OAuth 1.0 PLAINTEXT Authorization header built
// from the API key "consumer_key:token_key:token_secret", with a fresh nonce
// and timestamp.
package maasapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Credentials are the three parts of a MAAS API key.
type Credentials struct {
	ConsumerKey string
	TokenKey    string
	TokenSecret string
}

// ParseAPIKey splits a MAAS API key "consumer_key:token_key:token_secret".
// The error never contains the key.
func ParseAPIKey(key string) (Credentials, error) {
	parts := strings.Split(strings.TrimSpace(key), ":")
	if len(parts) != 3 {
		return Credentials{}, fmt.Errorf("a MAAS API key has three parts separated by colons (consumer_key:token_key:token_secret), this one has %d", len(parts))
	}
	for i, p := range parts {
		if p == "" {
			return Credentials{}, fmt.Errorf("part %d of 3 of the MAAS API key is empty (consumer_key:token_key:token_secret)", i+1)
		}
	}
	return Credentials{ConsumerKey: parts[0], TokenKey: parts[1], TokenSecret: parts[2]}, nil
}

// authorization returns the OAuth PLAINTEXT header value for one request.
func (c Credentials) authorization(now time.Time) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	// The consumer secret is empty, so the PLAINTEXT signature is
	// "&" + token secret, percent-encoded as a whole (RFC 5849 3.4.4).
	params := []struct{ k, v string }{
		{"oauth_version", "1.0"},
		{"oauth_signature_method", "PLAINTEXT"},
		{"oauth_consumer_key", c.ConsumerKey},
		{"oauth_token", c.TokenKey},
		{"oauth_signature", "&" + c.TokenSecret},
		{"oauth_nonce", hex.EncodeToString(nonce)},
		{"oauth_timestamp", strconv.FormatInt(now.Unix(), 10)},
	}
	var b strings.Builder
	b.WriteString(`OAuth realm=""`)
	for _, p := range params {
		fmt.Fprintf(&b, `, %s="%s"`, p.k, oauthEscape(p.v))
	}
	return b.String(), nil
}

// oauthEscape percent-encodes everything but the RFC 3986 unreserved set.
func oauthEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ('A' <= ch && ch <= 'Z') || ('a' <= ch && ch <= 'z') || ('0' <= ch && ch <= '9') ||
			ch == '-' || ch == '.' || ch == '_' || ch == '~' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// Client talks to one MAAS region.
type Client struct {
	// root is the MAAS URL, e.g. http://maas:5240/MAAS/, always ending in "/".
	root  *url.URL
	creds Credentials
	http  *http.Client
	// RequestTimeout, when set, bounds each request but the upload of a
	// chunk, whose caller bounds it by its progress.
	RequestTimeout time.Duration
}

// NewClient returns a client for the MAAS at maasURL (e.g.
// "http://maas:5240/MAAS"). httpClient may be nil for http.DefaultClient.
func NewClient(maasURL string, creds Credentials, httpClient *http.Client) (*Client, error) {
	u, err := ParseMAASURL(maasURL)
	if err != nil {
		return nil, err
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{root: u, creds: creds, http: httpClient}, nil
}

// ParseMAASURL checks a MAAS URL: http or https, a host, no query. The
// path gets a trailing slash.
func ParseMAASURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL (e.g. http://maas.example.com:5240/MAAS)", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host (e.g. http://maas.example.com:5240/MAAS)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q has a query or fragment; give the MAAS URL only (e.g. http://maas.example.com:5240/MAAS)", s)
	}
	if strings.Contains(u.Path, "/api/") {
		return nil, fmt.Errorf("%q contains the API path; give the MAAS URL without /api/2.0/ (e.g. http://maas.example.com:5240/MAAS)", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.User = nil
	return u, nil
}

// URL returns the MAAS URL the client talks to.
func (c *Client) URL() string { return c.root.String() }

// apiURL resolves a path below api/2.0/ of the MAAS URL.
func (c *Client) apiURL(path string) string {
	return c.root.ResolveReference(&url.URL{Path: "api/2.0/" + path}).String()
}

// serverURL resolves an absolute path (such as an upload_uri) against the
// scheme and host of the MAAS URL.
func (c *Client) serverURL(path string) (string, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return "", fmt.Errorf("MAAS returned an unusable URI %q: %w", path, err)
	}
	if ref.IsAbs() || ref.Host != "" {
		return "", fmt.Errorf("MAAS returned URI %q, expected a path on %s", path, c.root.Host)
	}
	return c.root.ResolveReference(ref).String(), nil
}

// Error is a MAAS API error response.
type Error struct {
	Method, URL string
	StatusCode  int
	// Body is the response body: text, or for 400 validation errors a JSON
	// object mapping field names to lists of messages.
	Body string
	// Fields holds the parsed validation errors, when Body is such an object.
	Fields map[string][]string
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Body)
	if len(e.Fields) > 0 {
		var parts []string
		for _, k := range sortedKeys(e.Fields) {
			parts = append(parts, fmt.Sprintf("%s: %s", k, strings.Join(e.Fields[k], " ")))
		}
		msg = strings.Join(parts, "; ")
	}
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	hint := ""
	switch e.StatusCode {
	case http.StatusUnauthorized:
		hint = " (MAAS did not accept the API key: check api_key, from `maas apikey --username <admin>` or the user's preferences page)"
	case http.StatusForbidden:
		hint = " (the API key's user must be a MAAS administrator to upload boot resources)"
	}
	return fmt.Sprintf("MAAS %s %s: %s: %s%s", e.Method, e.URL, http.StatusText(e.StatusCode), msg, hint)
}

// IsNotFound reports whether err is a MAAS 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// do sends a request with a fresh OAuth header and returns the body of a
// 2xx response, or an *Error.
func (c *Client) do(ctx context.Context, method, target, contentType string, body io.Reader, contentLength int64) ([]byte, error) {
	if c.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.RequestTimeout)
		defer cancel()
	}
	return c.send(ctx, method, target, contentType, body, contentLength)
}

// send is do without RequestTimeout.
func (c *Client) send(ctx context.Context, method, target, contentType string, body io.Reader, contentLength int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = contentLength
		req.Header.Set("Content-Type", contentType)
	}
	auth, err := c.creds.authorization(time.Now())
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("MAAS %s %s: reading the response: %w", method, target, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Method: method, URL: target, StatusCode: resp.StatusCode, Body: string(data)}
		if resp.StatusCode == http.StatusBadRequest {
			var fields map[string][]string
			if json.Unmarshal(data, &fields) == nil {
				e.Fields = fields
			}
		}
		return nil, e
	}
	return data, nil
}
