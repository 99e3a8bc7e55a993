package winsim

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strings"
)

// maasMetadataVersion is MaaSHttpService._METADATA_2012_03_01.
const maasMetadataVersion = "2012-03-01"

// maasService is metadata/services/maasservice.py MaaSHttpService: the
// MAAS metadata API at [maas] metadata_base_url (formerly
// maas_metadata_url), each request signed with OAuth 1.0 PLAINTEXT from
// the [maas] oauth_* options, with BaseHTTPMetadataService's retry. Every
// item is fetched when a plugin asks for it; an item MAAS answers 404
// for raises NotExistingMetadataException in the plugin that asked.
type maasService struct {
	http *cloudbaseHTTP
}

// cloudbaseMAAS is MaaSHttpService.load: no URL, not found; else the
// meta-data index must answer (any error: logged, not found).
func (m *Machine) cloudbaseMAAS(ctx context.Context, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) (cloudbaseService, error) {
	const logger = "cloudbaseinit.metadata.services.maasservice"
	base := conf.str("maas.metadata_base_url")
	if base == "" {
		l.log("DEBUG", logger, "MaaS metadata url not set")
		return nil, nil
	}
	h, err := newCloudbaseHTTP(m, base, conf, run, l)
	if err != nil {
		return nil, err
	}
	consumerKey, consumerSecret := conf.str("maas.oauth_consumer_key"), conf.str("maas.oauth_consumer_secret")
	tokenKey, tokenSecret := conf.str("maas.oauth_token_key"), conf.str("maas.oauth_token_secret")
	// _get_oauth_headers: oauthlib's Client.sign with
	// SIGNATURE_PLAINTEXT and an empty realm; the signature is
	// escape(consumer secret)&escape(token secret), and the header
	// escapes every parameter again.
	h.sign = func(req *http.Request) {
		l.log("DEBUG", logger, "Getting authorization headers for %s.", req.URL.String())
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 96))
		signature := oauthEscape(consumerSecret) + "&" + oauthEscape(tokenSecret)
		req.Header.Set("Authorization", fmt.Sprintf(`OAuth realm="", oauth_nonce="%s", oauth_timestamp="%d", oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%s"`,
			n.String(), m.clock.Now().Unix(), oauthEscape(consumerKey), oauthEscape(tokenKey), oauthEscape(signature)))
	}
	s := &maasService{http: h}
	if _, err := h.cached(ctx, maasMetadataVersion+"/meta-data/"); err != nil {
		l.log("ERROR", logger, "%s", err)
		l.log("DEBUG", logger, "Metadata not found at URL '%s'", base)
		return nil, nil
	}
	return s, nil
}

// oauthEscape is oauthlib.common.quote(s, safe=b'~'): everything but
// unreserved characters percent-encoded.
func oauthEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *maasService) name() string { return "MaaSHttpService" }

func (s *maasService) text(ctx context.Context, item string) (string, error) {
	b, err := s.http.cached(ctx, maasMetadataVersion+"/"+item)
	return string(b), err
}

// instanceID is get_instance_id: meta-data/instance-id (a 404 raises).
func (s *maasService) instanceID(ctx context.Context) (string, bool, error) {
	id, err := s.text(ctx, "meta-data/instance-id")
	return id, err == nil, err
}

func (s *maasService) hostName(ctx context.Context) (string, error) {
	return s.text(ctx, "meta-data/local-hostname")
}

// publicKeys is get_public_keys: meta-data/public-keys split into lines.
func (s *maasService) publicKeys(ctx context.Context) ([]string, error) {
	t, err := s.text(ctx, "meta-data/public-keys")
	if err != nil {
		return nil, err
	}
	return pythonSplitlines(t), nil
}

// adminUsername and adminPassword: MAAS has neither (base.py: None).
func (s *maasService) adminUsername(context.Context) (string, error) { return "", nil }
func (s *maasService) adminPassword(context.Context) (string, error) { return "", nil }

func (s *maasService) userData(ctx context.Context) ([]byte, error) {
	b, err := s.http.cached(ctx, maasMetadataVersion+"/user-data")
	if err != nil {
		return nil, err
	}
	return gunzipIfGzip(b)
}

var pemBlock = regexp.MustCompile(regexp.QuoteMeta(pemHeader) + `[\s\S]+?` + regexp.QuoteMeta(pemFooter))

// clientAuthCerts is get_client_auth_certs: the PEM certificates in
// meta-data/x509. MAAS answers 200 with an empty body when there are
// none; a 404 raises NotExistingMetadataException.
func (s *maasService) clientAuthCerts(ctx context.Context) ([]string, error) {
	t, err := s.text(ctx, "meta-data/x509")
	if err != nil {
		return nil, err
	}
	return pemBlock.FindAllString(t, -1), nil
}

// MAAS takes no password (base.py: can_post_password False).
func (s *maasService) canPostPassword(context.Context) (bool, error) { return false, nil }
func (s *maasService) isPasswordSet(context.Context) (bool, error)   { return false, nil }
func (s *maasService) postPassword(context.Context, string) error {
	return fmt.Errorf("MaaSHttpService takes no password")
}

// pythonSplitlines is str.splitlines() for the line ends metadata text
// holds (\n, \r\n, \r): no empty last item.
func pythonSplitlines(s string) []string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
