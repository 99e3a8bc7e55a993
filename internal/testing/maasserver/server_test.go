package maasserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oauth builds a PLAINTEXT header the way oauthlib does (signature %26secret).
func oauth(k Key, nonce string, ts time.Time, rawAmp bool) string {
	sig := "%26" + k.Secret
	if rawAmp {
		sig = "&" + k.Secret
	}
	return fmt.Sprintf(`OAuth realm="", oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%s", oauth_nonce="%s", oauth_timestamp="%d"`,
		k.Consumer, k.Token, sig, nonce, ts.Unix())
}

var nonceSeq int

func call(t *testing.T, s *Server, method, path, auth, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.MAASURL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fresh() string {
	nonceSeq++
	return "nonce" + strconv.Itoa(nonceSeq)
}

func TestOAuth(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	k := DefaultAdminKey
	now := time.Now()
	for _, tc := range []struct {
		name   string
		auth   string
		status int
		body   string
	}{
		{"percent-encoded signature", oauth(k, fresh(), now, false), 200, "[]"},
		{"raw & signature", oauth(k, fresh(), now, true), 200, "[]"},
		{"no header", "", 401, "No authorization header"},
		{"wrong secret", oauth(Key{Consumer: k.Consumer, Token: k.Token, Secret: "nope"}, fresh(), now, false), 401, "Invalid signature"},
		{"wrong token", oauth(Key{Consumer: k.Consumer, Token: "other", Secret: k.Secret}, fresh(), now, false), 401, "Invalid access token: other"},
		{"unknown consumer", oauth(Key{Consumer: "x", Token: k.Token, Secret: k.Secret}, fresh(), now, false), 401, "Invalid consumer"},
		{"stale timestamp", oauth(k, fresh(), now.Add(-time.Hour), false), 401, "Expired timestamp"},
		{"empty nonce", oauth(k, "", now, false), 401, "Missing oauth_nonce"},
		{"HMAC", strings.Replace(oauth(k, fresh(), now, false), "PLAINTEXT", "HMAC-SHA1", 1), 401, "HMAC-SHA1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, s, "GET", "/api/2.0/boot-resources/?type=uploaded", tc.auth, "", nil)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("status %d body %q, want %d containing %q", status, body, tc.status, tc.body)
			}
		})
	}
	t.Run("replayed nonce", func(t *testing.T) {
		h := oauth(k, fresh(), now, false)
		if status, _ := call(t, s, "GET", "/api/2.0/boot-resources/", h, "", nil); status != 200 {
			t.Fatalf("first use: %d", status)
		}
		if status, body := call(t, s, "GET", "/api/2.0/boot-resources/", h, "", nil); status != 401 || !strings.Contains(body, "Nonce already used") {
			t.Errorf("replay: status %d body %q, want 401 Nonce already used", status, body)
		}
	})
}

func createForm(t *testing.T, s *Server, form url.Values) (int, string) {
	t.Helper()
	return call(t, s, "POST", "/api/2.0/boot-resources/", oauth(DefaultAdminKey, fresh(), time.Now(), false),
		"application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

func TestCreateValidation(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	sum := strings.Repeat("ab", 32)
	good := func() url.Values {
		return url.Values{"name": {"windows/win2022"}, "architecture": {"amd64/generic"}, "filetype": {"ddgz"},
			"sha256": {sum}, "size": {"10"}}
	}
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		want   map[string][]string
	}{
		{"no name", func(v url.Values) { v.Del("name") }, map[string][]string{"name": {"This field is required."}}},
		{"unknown os", func(v url.Values) { v.Set("name", "winders/2022") }, map[string][]string{"name": {
			"Unsupport operating system winders, supported operating systems: ['ubuntu', 'centos', 'rhel', 'custom', 'windows', 'suse', 'ol', 'esxi']"}}},
		{"bare os name", func(v url.Values) { v.Set("name", "windows") }, map[string][]string{"name": {"windows is a reserved name"}}},
		{"custom/ os name", func(v url.Values) { v.Set("name", "custom/ubuntu") }, map[string][]string{"name": {"ubuntu is a reserved name"}}},
		{"bad architecture", func(v url.Values) { v.Set("architecture", "amd64") }, map[string][]string{"architecture": {
			"'amd64' is not a valid architecture.  It should be one of: 'amd64/generic', 'amd64/hwe-22.04', 'arm64/generic'."}}},
		{"bad filetype", func(v url.Values) { v.Set("filetype", "gz") }, map[string][]string{"filetype": {
			"Select a valid choice. gz is not one of the available choices."}}},
		{"short sha256", func(v url.Values) { v.Set("sha256", "abc") }, map[string][]string{"sha256": {
			"Ensure this value has at least 64 characters (it has 3)."}}},
		{"size not a number", func(v url.Values) { v.Set("size", "10G") }, map[string][]string{"size": {"Enter a whole number."}}},
		{"no sha256 and size", func(v url.Values) { v.Del("sha256"); v.Del("size") }, map[string][]string{
			"sha256": {"This field is required."}, "size": {"This field is required."}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := good()
			tc.change(v)
			status, body := createForm(t, s, v)
			var got map[string][]string
			if status != 400 || json.Unmarshal([]byte(body), &got) != nil {
				t.Fatalf("status %d body %q, want 400 with a JSON field map", status, body)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("errors = %v, want %v", got, tc.want)
			}
		})
	}
	if len(s.Resources()) != 0 {
		t.Errorf("invalid creates left resources: %+v", s.Resources())
	}

	t.Run("default filetype is tgz", func(t *testing.T) {
		v := good()
		v.Del("filetype")
		status, body := createForm(t, s, v)
		if status != 201 || !strings.Contains(body, `"root-tgz"`) {
			t.Errorf("status %d body %s, want 201 with a root-tgz file", status, body)
		}
	})
}

func TestChunkRules(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	content := []byte(strings.Repeat("winbake", 100))
	h := sha256.Sum256(content)
	status, body := createForm(t, s, url.Values{"name": {"windows/win2025"}, "architecture": {"amd64/generic"},
		"filetype": {"ddraw"}, "sha256": {hex.EncodeToString(h[:])}, "size": {strconv.Itoa(len(content))}})
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var res struct {
		Sets map[string]struct {
			Files map[string]struct {
				UploadURI string `json:"upload_uri"`
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	var uri string
	for _, set := range res.Sets {
		uri = set.Files["root-dd.raw"].UploadURI
	}
	if !strings.HasPrefix(uri, "/MAAS/api/2.0/boot-resources/1/upload/") {
		t.Fatalf("upload_uri = %q", uri)
	}
	put := func(b []byte) (int, string) {
		req, _ := http.NewRequest("PUT", s.URL+uri, strings.NewReader(string(b)))
		req.Header.Set("Authorization", oauth(DefaultAdminKey, fresh(), time.Now(), false))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	steps := []struct {
		body   []byte
		status int
		text   string
	}{
		{nil, 400, "Missing data."},
		{content[:300], 200, "OK"},
		{append([]byte(nil), content[300:]...), 200, "OK"},
		{content[:1], 400, "Cannot upload to a complete file."},
	}
	for i, st := range steps {
		if status, text := put(st.body); status != st.status || text != st.text {
			t.Errorf("step %d: %d %q, want %d %q", i, status, text, st.status, st.text)
		}
	}

	// Too much data, then the wrong content.
	other := []byte(strings.Repeat("x", 100))
	oh := sha256.Sum256(other)
	_, body = createForm(t, s, url.Values{"name": {"windows/win2022"}, "architecture": {"amd64/generic"},
		"filetype": {"ddgz"}, "sha256": {hex.EncodeToString(oh[:])}, "size": {"100"}})
	uri = strings.Split(strings.Split(body, `"upload_uri":"`)[1], `"`)[0]
	if status, text := put(make([]byte, 101)); status != 400 || text != "Too much data received." {
		t.Errorf("oversized chunk: %d %q", status, text)
	}
	if status, text := put(make([]byte, 100)); status != 400 || text != "Saved content does not match given SHA256 value." {
		t.Errorf("wrong content: %d %q", status, text)
	}
	if status, text := put(other); status != 200 || text != "OK" {
		t.Errorf("right content after a mismatch: %d %q", status, text)
	}
}
