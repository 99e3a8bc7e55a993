package winsim

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maasMetadataVersion is the metadata version MaaSHttpService reads.
const maasMetadataVersion = "2012-03-01"

// cloudbaseMAAS is MaaSHttpService: the MAAS metadata API at [maas]
// metadata_base_url (formerly maas_metadata_url), every request signed
// with OAuth 1.0 PLAINTEXT from the [maas] oauth_* options, with
// retry_count tries retry_count_interval apart. MAAS takes no password.
func cloudbaseMAAS(ctx context.Context, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog, clock Clock) (*cloudbaseMetadata, error) {
	const logger = "cloudbaseinit.metadata.services.maasservice"
	base := conf.groupOpt("maas", "metadata_base_url", "maas_metadata_url", "")
	if base == "" {
		l.log("DEBUG", logger, "MaaS metadata url not set")
		return nil, nil
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	opt := func(name string) string { return conf.groupOpt("maas", name, "maas_"+name, "") }
	tries := conf.integer("retry_count", 5)
	if tries < 1 {
		tries = 1
	}
	interval := time.Duration(conf.integer("retry_count_interval", 4)) * time.Second
	get := func(path string) ([]byte, bool, error) {
		var lastErr error
		for i := 0; i < tries; i++ {
			if i > 0 {
				if err := sleep(ctx, clock, interval); err != nil {
					return nil, false, err
				}
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if err != nil {
				return nil, false, err
			}
			nonce := make([]byte, 8)
			_, _ = rand.Read(nonce)
			req.Header.Set("Authorization", fmt.Sprintf(`OAuth realm="", oauth_nonce="%x", oauth_timestamp="%d", oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%s"`,
				nonce, clock.Now().Unix(), url.QueryEscape(opt("oauth_consumer_key")), url.QueryEscape(opt("oauth_token_key")),
				url.QueryEscape(url.QueryEscape(opt("oauth_consumer_secret"))+"&"+url.QueryEscape(opt("oauth_token_secret")))))
			resp, err := run.HTTPClient.Do(req)
			if err != nil {
				lastErr = err
				continue
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case err != nil:
				lastErr = err
				continue
			case resp.StatusCode == http.StatusNotFound:
				return nil, false, nil
			case resp.StatusCode != http.StatusOK:
				lastErr = fmt.Errorf("HTTP Error %d", resp.StatusCode)
				continue
			}
			return b, true, nil
		}
		return nil, false, lastErr
	}
	v := maasMetadataVersion + "/"
	if _, found, err := get(v + "meta-data/"); err != nil || !found {
		l.log("DEBUG", logger, "Metadata not found at URL '%s'", base)
		return nil, nil
	}
	md := &cloudbaseMetadata{name: "MaaSHttpService", meta: map[string]any{}}
	for key, path := range map[string]string{"uuid": "meta-data/instance-id", "hostname": "meta-data/local-hostname"} {
		b, found, err := get(v + path)
		if err != nil {
			return nil, err
		}
		if found {
			md.meta[key] = strings.TrimSpace(string(b))
		}
	}
	keys := map[string]any{}
	if b, found, err := get(v + "meta-data/public-keys"); err == nil && found {
		for i, k := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k = strings.TrimSpace(k); k != "" {
				keys[fmt.Sprint(i)] = k
			}
		}
	}
	md.meta["public_keys"] = keys
	if b, found, err := get(v + "user-data"); err == nil && found {
		md.userData = b
	}
	return md, nil
}
