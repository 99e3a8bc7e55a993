//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go tool packer-sdc struct-markdown

package maas

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/post-processor/maas/maasapi"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-maas"

// Config holds the settings of the winbake-maas post-processor.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The MAAS URL, as for `maas login`, e.g.
	// `http://maas.example.com:5240/MAAS`. The API path (`/api/2.0/`) is
	// added by winbake.
	URL string `mapstructure:"url" required:"true"`

	// The API key of a MAAS administrator, `consumer_key:token_key:token_secret`
	// (from `maas apikey --username <admin>` or the user's preferences page).
	// Sensitive: winbake never logs it; pass it through a `sensitive = true`
	// variable or the environment rather than the template.
	APIKey string `mapstructure:"api_key" required:"true"`

	// The Windows release the image is published as; the boot resource is
	// named `windows/<release>`, e.g. `release = "win2022"` gives
	// `windows/win2022`, deployable as OS `windows`, release `win2022`.
	// Lower-case letters, digits, `-`, `_` and `.`.
	//
	// The `windows/` prefix makes MAAS deploy the image with its Windows OS
	// driver (a `custom/` image would be deployed as a Linux one). The
	// releases `win2008r2`, `win2012`, `win2012r2`, `win2016`, `win2016nano`,
	// `win2016-core`, `win2016dc`, `win2016dc-core`, `win2019`,
	// `win2019-core`, `win2019dc`, `win2019dc-core` and `win10ent` make MAAS
	// demand a licence key at every deployment; pick another name (such as
	// `win2022`, `win2025` or `windows-server`) unless that is wanted.
	Release string `mapstructure:"release" required:"true"`

	// The title MAAS shows for the image. Defaults to `Windows <release>
	// (winbake)`.
	Title string `mapstructure:"title" required:"false"`

	// The MAAS architecture, `<arch>/<subarch>`. Defaults to `amd64/generic`.
	Architecture string `mapstructure:"architecture" required:"false"`

	// Replace a boot resource of the same name and architecture that already
	// exists in MAAS. Without it, such a resource is an error and nothing is
	// uploaded. When replacing, the existing image stays deployable until the
	// new one is completely uploaded and stored.
	Replace bool `mapstructure:"replace" required:"false"`

	// How long to wait for MAAS to report the uploaded image complete (MAAS
	// 3.5 and later copy it to the region storage after the last byte).
	// Defaults to `30m`.
	CompleteTimeout time.Duration `mapstructure:"complete_timeout" required:"false"`

	// How long the upload of a chunk may make no progress — MAAS taking no
	// data, or not answering once it has the chunk — before the upload
	// fails (and a resource it created is deleted). Defaults to `5m`.
	UploadIdleTimeout time.Duration `mapstructure:"upload_idle_timeout" required:"false"`

	// A PEM file of CA certificates to trust for an `https://` MAAS URL, in
	// addition to the system ones.
	CACertFile string `mapstructure:"ca_cert_file" required:"false"`

	// Skip verifying the MAAS server's TLS certificate. Only for test
	// installations: the API key is sent to whoever answers.
	InsecureSkipTLSVerify bool `mapstructure:"insecure_skip_tls_verify" required:"false"`

	ctx interpolate.Context
}

const (
	defaultArchitecture      = "amd64/generic"
	defaultCompleteTimeout   = 30 * time.Minute
	defaultUploadIdleTimeout = 5 * time.Minute
	// requestTimeout bounds each API request but a chunk's upload
	// (upload_idle_timeout), so a MAAS that stops answering fails the
	// build instead of hanging it.
	requestTimeout = 5 * time.Minute
)

var (
	releasePattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	architecturePattern = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9][a-z0-9._-]*$`)
)

// licenceKeyReleases are the Windows releases for which MAAS
// (REQUIRE_LICENSE_KEY in its Windows OS driver) demands a licence key at
// deploy time.
var licenceKeyReleases = []string{
	"win2008r2", "win2012", "win2012r2", "win2016", "win2016nano", "win2016-core",
	"win2016dc", "win2016dc-core", "win2019", "win2019-core", "win2019dc",
	"win2019dc-core", "win10ent",
}

// Prepare decodes raws into c, fills in defaults and validates the result.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	// The key may come from a variable not marked sensitive; make sure
	// Packer masks it in everything it prints.
	if c.APIKey != "" {
		packersdk.LogSecretFilter.Set(c.APIKey)
		if creds, err := maasapi.ParseAPIKey(c.APIKey); err == nil {
			packersdk.LogSecretFilter.Set(creds.TokenSecret)
		}
	}

	var errs *packersdk.MultiError
	add := func(format string, a ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...)) }

	c.URL = strings.TrimSpace(c.URL)
	if c.URL == "" {
		add("url: is required; the MAAS URL, e.g. http://maas.example.com:5240/MAAS")
	} else if _, err := maasapi.ParseMAASURL(c.URL); err != nil {
		add("url: %v", err)
	}

	if c.APIKey == "" {
		add("api_key: is required; the API key of a MAAS administrator, consumer_key:token_key:token_secret")
	} else if _, err := maasapi.ParseAPIKey(c.APIKey); err != nil {
		add("api_key: %v", err)
	}

	c.Release = strings.TrimSpace(c.Release)
	switch {
	case c.Release == "":
		add("release: is required; the image is published as windows/<release>, e.g. release = \"win2022\"")
	case strings.HasPrefix(c.Release, "custom/"):
		add("release: %q: custom/ images are deployed as Linux; give only the release, e.g. %q, and winbake publishes windows/<release>",
			c.Release, strings.TrimPrefix(c.Release, "custom/"))
	case strings.HasPrefix(c.Release, "windows/"):
		add("release: %q: give only the release, e.g. %q; winbake adds the windows/ prefix", c.Release, strings.TrimPrefix(c.Release, "windows/"))
	case !releasePattern.MatchString(c.Release):
		add("release: %q is not a valid release name; use lower-case letters, digits, '-', '_' and '.', e.g. win2022", c.Release)
	}

	if c.Architecture == "" {
		c.Architecture = defaultArchitecture
	}
	if !architecturePattern.MatchString(c.Architecture) {
		add("architecture: %q is not <arch>/<subarch>; use e.g. %s", c.Architecture, defaultArchitecture)
	}
	if c.Title == "" && c.Release != "" {
		c.Title = fmt.Sprintf("Windows %s (winbake)", c.Release)
	}

	if c.UploadIdleTimeout < 0 {
		add("upload_idle_timeout: must not be negative, got %s", c.UploadIdleTimeout)
	} else if c.UploadIdleTimeout == 0 {
		c.UploadIdleTimeout = defaultUploadIdleTimeout
	}
	if c.CompleteTimeout < 0 {
		add("complete_timeout: must not be negative, got %s", c.CompleteTimeout)
	} else if c.CompleteTimeout == 0 {
		c.CompleteTimeout = defaultCompleteTimeout
	}

	if c.CACertFile != "" {
		if _, err := c.certPool(); err != nil {
			add("ca_cert_file: %v", err)
		}
	}

	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// name is the MAAS boot-resource name.
func (c *Config) name() string { return "windows/" + c.Release }

// needsLicenceKey reports whether MAAS demands a licence key to deploy the
// release.
func (c *Config) needsLicenceKey() bool {
	for _, r := range licenceKeyReleases {
		if r == c.Release {
			return true
		}
	}
	return false
}

func (c *Config) certPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CACertFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", c.CACertFile)
	}
	return pool, nil
}

// httpClient returns the HTTP client for the configured TLS options.
func (c *Config) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipTLSVerify} //nolint:gosec // documented test-only option
	if c.CACertFile != "" {
		pool, err := c.certPool()
		if err != nil {
			return nil, fmt.Errorf("ca_cert_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	// No Client.Timeout: maasapi.Client.RequestTimeout bounds API calls,
	// upload_idle_timeout a chunk's upload.
	return &http.Client{Transport: tr}, nil
}
