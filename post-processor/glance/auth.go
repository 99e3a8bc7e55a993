package glance

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"gopkg.in/yaml.v2"
)

// envCloudName names the cloud built from the OS_* environment.
const envCloudName = "winbake-environment"

// authSource says where the credentials came from, for messages; it never
// holds a secret.
type authSource struct {
	// Compute is the Nova client of the same login, for the retire
	// policy's question which images instances still use.
	Compute func() (*gophercloud.ServiceClient, error)

	Description string // e.g. `cloud "prod" from /etc/openstack/clouds.yaml`
	AuthURL     string
	User        string
	Project     string
	Region      string
}

// parseAuth resolves the credentials the way the openstack CLI does: the
// cloud named by `cloud` or OS_CLOUD from clouds.yaml, else the OS_*
// variables. The OS_* variables are turned into a clouds.yaml entry so both
// paths share gophercloud's parser, including the user and project domain
// variables that openstack.AuthOptionsFromEnv ignores.
func parseAuth(c *AuthConfig, getenv func(string) string) (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, authSource, error) {
	cloudName := c.Cloud
	if cloudName == "" {
		cloudName = getenv("OS_CLOUD")
	}
	opts := []clouds.ParseOption{}
	var src authSource
	if cloudName != "" {
		opts = append(opts, clouds.WithCloudName(cloudName))
		file := c.CloudsFile
		if file == "" {
			file = getenv("OS_CLIENT_CONFIG_FILE")
		}
		if file != "" {
			if _, err := os.Stat(file); err != nil {
				return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, src, fmt.Errorf("clouds_file: %w", err)
			}
			opts = append(opts, clouds.WithLocations(file))
			src.Description = fmt.Sprintf("cloud %q from %s", cloudName, file)
		} else {
			src.Description = fmt.Sprintf("cloud %q from clouds.yaml", cloudName)
		}
	} else {
		if getenv("OS_AUTH_URL") == "" {
			return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, src, fmt.Errorf(
				"cloud: no credentials; set cloud = \"<name in clouds.yaml>\", or OS_CLOUD, or the OS_* variables of an openrc file (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...)")
		}
		cloud, err := cloudFromEnv(getenv)
		if err != nil {
			return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, src, err
		}
		doc, err := yaml.Marshal(clouds.Clouds{Clouds: map[string]clouds.Cloud{envCloudName: cloud}})
		if err != nil {
			return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, src, err
		}
		opts = append(opts, clouds.WithCloudName(envCloudName), clouds.WithCloudsYAML(strings.NewReader(string(doc))))
		src.Description = "the OS_* environment variables"
	}
	if c.Region != "" {
		opts = append(opts, clouds.WithRegion(c.Region))
	}
	if c.Interface != "" {
		opts = append(opts, clouds.WithEndpointType(c.Interface))
	}
	if c.CACertFile != "" {
		opts = append(opts, clouds.WithCACertPath(c.CACertFile))
	}
	if c.ClientCertFile != "" {
		opts = append(opts, clouds.WithClientCertPath(c.ClientCertFile), clouds.WithClientKeyPath(c.ClientKeyFile))
	}
	if c.Insecure {
		opts = append(opts, clouds.WithInsecure(true))
	}
	ao, eo, tlsConfig, err := clouds.Parse(opts...)
	if err != nil {
		// clouds.Parse names files and clouds, never secrets.
		return ao, eo, nil, src, fmt.Errorf("reading the credentials (%s): %w", src.Description, err)
	}
	if ao.IdentityEndpoint == "" {
		return ao, eo, nil, src, fmt.Errorf("reading the credentials (%s): no auth_url / OS_AUTH_URL", src.Description)
	}
	// Long uploads outlive tokens: let gophercloud log in again and retry
	// (the upload body is seekable).
	ao.AllowReauth = true
	src.AuthURL = ao.IdentityEndpoint
	src.Region = eo.Region
	src.User = firstNonEmpty(ao.Username, ao.UserID, ao.ApplicationCredentialName, ao.ApplicationCredentialID)
	if ao.Scope != nil {
		src.Project = firstNonEmpty(ao.Scope.ProjectName, ao.Scope.ProjectID)
	}
	return ao, eo, tlsConfig, src, nil
}

// cloudFromEnv maps the openrc variables to a clouds.yaml entry, as
// openstacksdk does.
func cloudFromEnv(getenv func(string) string) (clouds.Cloud, error) {
	auth := &clouds.AuthInfo{
		AuthURL:                     getenv("OS_AUTH_URL"),
		Token:                       getenv("OS_TOKEN"),
		Username:                    getenv("OS_USERNAME"),
		UserID:                      getenv("OS_USER_ID"),
		Password:                    getenv("OS_PASSWORD"),
		ApplicationCredentialID:     getenv("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   getenv("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: getenv("OS_APPLICATION_CREDENTIAL_SECRET"),
		SystemScope:                 getenv("OS_SYSTEM_SCOPE"),
		ProjectName:                 firstNonEmpty(getenv("OS_PROJECT_NAME"), getenv("OS_TENANT_NAME")),
		ProjectID:                   firstNonEmpty(getenv("OS_PROJECT_ID"), getenv("OS_TENANT_ID")),
		UserDomainName:              getenv("OS_USER_DOMAIN_NAME"),
		UserDomainID:                getenv("OS_USER_DOMAIN_ID"),
		ProjectDomainName:           getenv("OS_PROJECT_DOMAIN_NAME"),
		ProjectDomainID:             getenv("OS_PROJECT_DOMAIN_ID"),
		DomainName:                  getenv("OS_DOMAIN_NAME"),
		DomainID:                    getenv("OS_DOMAIN_ID"),
		TrustID:                     getenv("OS_TRUST_ID"),
	}
	// OS_DEFAULT_DOMAIN (openstacksdk's default_domain) fills in missing
	// user and project domains.
	if d := firstNonEmpty(getenv("OS_DEFAULT_DOMAIN_ID"), getenv("OS_DEFAULT_DOMAIN")); d != "" {
		if auth.UserDomainName == "" && auth.UserDomainID == "" {
			auth.UserDomainID = d
		}
		if auth.ProjectDomainName == "" && auth.ProjectDomainID == "" {
			auth.ProjectDomainID = d
		}
	}
	// With a project name but no project domain, the project lives in the
	// user's domain (keystoneauth's behaviour for openrc files that only
	// set OS_USER_DOMAIN_NAME).
	if auth.ProjectName != "" && auth.ProjectDomainName == "" && auth.ProjectDomainID == "" && auth.DomainName == "" && auth.DomainID == "" {
		auth.ProjectDomainName, auth.ProjectDomainID = auth.UserDomainName, auth.UserDomainID
	}
	cloud := clouds.Cloud{
		AuthInfo:           auth,
		RegionName:         getenv("OS_REGION_NAME"),
		Interface:          firstNonEmpty(getenv("OS_INTERFACE"), getenv("OS_ENDPOINT_TYPE")),
		IdentityAPIVersion: getenv("OS_IDENTITY_API_VERSION"),
		CACertFile:         getenv("OS_CACERT"),
		ClientCertFile:     getenv("OS_CERT"),
		ClientKeyFile:      getenv("OS_KEY"),
	}
	switch authType := getenv("OS_AUTH_TYPE"); authType {
	case "":
		if auth.ApplicationCredentialID != "" || auth.ApplicationCredentialName != "" {
			cloud.AuthType = clouds.AuthV3ApplicationCredential
		}
	default:
		cloud.AuthType = clouds.AuthType(authType)
	}
	if v := getenv("OS_INSECURE"); v != "" {
		insecure, err := strconv.ParseBool(v)
		if err != nil {
			return cloud, fmt.Errorf("OS_INSECURE: %q is not a boolean; use true or false", v)
		}
		verify := !insecure
		cloud.Verify = &verify
	}
	if auth.Username == "" && auth.UserID == "" && auth.Token == "" && auth.ApplicationCredentialID == "" && auth.ApplicationCredentialName == "" {
		return cloud, fmt.Errorf("OS_USERNAME: OS_AUTH_URL is set but no user; set OS_USERNAME and OS_PASSWORD (or OS_APPLICATION_CREDENTIAL_ID/SECRET, or OS_TOKEN)")
	}
	return cloud, nil
}

// connect logs in and returns the image service client.
func connect(ctx context.Context, c *AuthConfig, getenv func(string) string) (*gophercloud.ServiceClient, authSource, error) {
	ao, eo, tlsConfig, src, err := parseAuth(c, getenv)
	if err != nil {
		return nil, src, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	provider, err := config.NewProviderClient(ctx, ao, config.WithHTTPClient(http.Client{Transport: sizedUploads{transport}}))
	if err != nil {
		return nil, src, authError(src, err)
	}
	provider.UserAgent.Prepend("packer-plugin-winbake")
	client, err := openstack.NewImageV2(provider, eo)
	if err != nil {
		return nil, src, fmt.Errorf("finding the image service (Glance) in the catalog of %s (region %q, interface %q): %w",
			src.AuthURL, eo.Region, eo.Availability, err)
	}
	src.Compute = func() (*gophercloud.ServiceClient, error) {
		if c.ComputeEndpoint != "" {
			// A Nova endpoint given by hand: /v2.1 and the project as the
			// catalog's compute URL carries them.
			base := strings.TrimRight(c.ComputeEndpoint, "/") + "/"
			return &gophercloud.ServiceClient{ProviderClient: provider, Endpoint: base, ResourceBase: base, Type: "compute"}, nil
		}
		sc, err := openstack.NewComputeV2(provider, eo)
		if err == nil && (sc == nil || sc.ProviderClient == nil) {
			err = fmt.Errorf("the catalog names no usable compute endpoint")
		}
		return sc, err
	}
	if c.ImageEndpoint != "" {
		base := strings.TrimRight(c.ImageEndpoint, "/")
		base = strings.TrimSuffix(base, "/v2")
		client.Endpoint = base + "/"
		client.ResourceBase = base + "/v2/"
	}
	return client, src, nil
}

// authError explains a failed log-in without repeating any secret.
func authError(src authSource, err error) error {
	who := fmt.Sprintf("user %q", src.User)
	if src.Project != "" {
		who += fmt.Sprintf(" in project %q", src.Project)
	}
	if gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		return fmt.Errorf("logging in to %s as %s (credentials from %s): Keystone refused the credentials (401 Unauthorized); check the password, user and project names and their domains",
			src.AuthURL, who, src.Description)
	}
	return fmt.Errorf("logging in to %s as %s (credentials from %s): %w", src.AuthURL, who, src.Description, err)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// sizedUploads sends upload bodies with a Content-Length instead of chunked:
// glance-api (eventlet) decodes chunked bodies in Python, noticeably slower
// than reading a sized body. gophercloud cannot set the length itself.
type sizedUploads struct{ next http.RoundTripper }

func (s sizedUploads) RoundTrip(req *http.Request) (*http.Response, error) {
	if body, ok := req.Body.(*hashingBody); ok && req.ContentLength <= 0 {
		req = req.Clone(req.Context())
		req.ContentLength = body.size
		req.TransferEncoding = nil
	}
	return s.next.RoundTrip(req)
}
