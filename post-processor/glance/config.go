//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,AuthConfig
//go:generate go tool packer-sdc struct-markdown

package glance

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// pluginType is the name Packer's decoder uses in its messages.
const pluginType = "winbake-glance"

// Upload methods.
const (
	MethodUpload       = "upload"
	MethodGlanceDirect = "glance-direct"
)

// Retire policies.
const (
	RetireHide   = "hide"
	RetireShare  = "private-and-share-with-users"
	RetireDelete = "delete-unused"
)

// Layouts.
const (
	LayoutDisk = "disk"
	LayoutUEC  = "uec"
)

var visibilities = []string{"private", "shared", "community", "public"}
var containerFormats = []string{"bare", "ovf", "ova", "docker", "compressed", "ami", "ari", "aki"}

// AuthConfig says how to log in to OpenStack, like the `openstack` CLI does:
// a cloud from clouds.yaml, or the `OS_*` variables of an openrc file.
type AuthConfig struct {
	// Name of the cloud in `clouds.yaml` (and `secure.yaml` next to it).
	// Defaults to the `OS_CLOUD` environment variable. When neither is set,
	// the credentials come from the `OS_*` environment variables of a
	// standard openrc file (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
	// `OS_PROJECT_NAME`, `OS_USER_DOMAIN_NAME`, `OS_PROJECT_DOMAIN_NAME`,
	// `OS_APPLICATION_CREDENTIAL_ID`/`_SECRET`, `OS_TOKEN`, `OS_CACERT`,
	// `OS_CERT`, `OS_KEY`, `OS_INSECURE`, `OS_REGION_NAME`, `OS_INTERFACE`,
	// ...).
	Cloud string `mapstructure:"cloud" required:"false"`
	// Path of the `clouds.yaml` file. Defaults to `OS_CLIENT_CONFIG_FILE`,
	// else the first of `./clouds.yaml`, `~/.config/openstack/clouds.yaml`
	// and `/etc/openstack/clouds.yaml`.
	CloudsFile string `mapstructure:"clouds_file" required:"false"`
	// Region of the image endpoint. Defaults to the cloud's `region_name`
	// or `OS_REGION_NAME`.
	Region string `mapstructure:"region" required:"false"`
	// Endpoint interface from the catalog: `public` (default), `internal`
	// or `admin`. Defaults to the cloud's `interface` or `OS_INTERFACE`.
	Interface string `mapstructure:"interface" required:"false"`
	// PEM file with the CA certificates that sign the Keystone and Glance
	// endpoints. Defaults to the cloud's `cacert` or `OS_CACERT`.
	CACertFile string `mapstructure:"cacert" required:"false"`
	// PEM client certificate for mutual TLS (with `key`). Defaults to the
	// cloud's `cert` or `OS_CERT`.
	ClientCertFile string `mapstructure:"cert" required:"false"`
	// PEM private key of `cert`. Defaults to the cloud's `key` or `OS_KEY`.
	ClientKeyFile string `mapstructure:"key" required:"false"`
	// Glance endpoint to use instead of the one in the service catalog,
	// e.g. `https://glance.example.com:9292`. For clouds whose catalog
	// lists an address this machine cannot reach.
	ImageEndpoint string `mapstructure:"image_endpoint" required:"false"`
	// Nova endpoint to use instead of the one in the service catalog, e.g.
	// `https://nova.example.com:8774/v2.1`: where the retire policy asks
	// which instances use an older image.
	ComputeEndpoint string `mapstructure:"compute_endpoint" required:"false"`
	// Do not verify the TLS certificates of the endpoints. Defaults to
	// `verify: false` of the cloud or `OS_INSECURE=true`. Only for test
	// clouds.
	Insecure bool `mapstructure:"insecure" required:"false"`
}

// Config holds the settings of the winbake-glance post-processor.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`
	AuthConfig          `mapstructure:",squash"`

	// Name of the image in Glance (`name` is taken by Packer for the
	// post-processor block itself). Templates are rendered, for example
	// `"Windows Server 2022 - x64 [{{ isotime \"2006-01-02\" }}]"`.
	Name string `mapstructure:"image_name" required:"true"`
	// Who may see the image: `private` (default), `shared`, `community` or
	// `public` (usually admin only). Always sent: Glance's own default is
	// `shared`.
	Visibility string `mapstructure:"visibility" required:"false"`
	// Image tags.
	Tags []string `mapstructure:"tags" required:"false"`
	// Smallest root disk in GiB an instance of the image needs. Defaults to
	// the image's virtual size, rounded up to whole GiB.
	MinDisk int `mapstructure:"min_disk" required:"false"`
	// Smallest RAM in MiB an instance of the image needs. Defaults to 0 (no
	// minimum).
	MinRAM int `mapstructure:"min_ram" required:"false"`
	// Protect the image from deletion.
	Protected bool `mapstructure:"protected" required:"false"`
	// Extra image properties (string values). They win over the properties
	// winbake derives from the build (`os_type`, `hw_firmware_type`, ...).
	// Names starting with `os_glance_` are reserved by Glance.
	Properties map[string]string `mapstructure:"properties" required:"false"`
	// Container format: `bare` (default), `ovf`, `ova`, `docker`,
	// `compressed`, `ami`, `ari` or `aki`. The disk format is always read
	// from the file itself with `qemu-img info`.
	ContainerFormat string `mapstructure:"container_format" required:"false"`

	// How the data reaches Glance:
	//
	// - `upload` (default): `PUT /v2/images/{id}/file`, synchronous.
	// - `glance-direct`: stage the data (`PUT .../stage`), then ask Glance
	//   to import it into `stores` and wait until the image is active. For
	//   clouds whose policy forbids the plain upload, or to import into
	//   several stores.
	Method string `mapstructure:"method" required:"false"`
	// Store IDs (see `openstack image stores list`) to put the image into.
	// With `upload` at most one store may be given (the `X-Image-Meta-Store`
	// header). Defaults to the cloud's default store.
	Stores []string `mapstructure:"stores" required:"false"`
	// How long to wait for a `glance-direct` import to finish. Defaults to
	// `30m`.
	ImportTimeout time.Duration `mapstructure:"import_timeout" required:"false"`

	// Image family, stored as the `family` property, e.g. `ws2022`. Needed
	// for `keep_visible`.
	Family string `mapstructure:"family" required:"false"`
	// Keep only the newest N images of `family` (this one included) visible
	// in image lists; older active images of the family in the same project
	// get `os_hidden = true`. Hidden images are never deleted: running
	// instances and resizes keep working, and `openstack image list
	// --hidden` still shows them. 0 (default) hides nothing.
	KeepVisible int `mapstructure:"keep_visible" required:"false"`
	// What happens to the family's images beyond the newest
	// `keep_visible`. Before anything changes, Nova is asked which
	// instances (of all projects, where the credentials allow) still use
	// each of them, and the answer is reported.
	//
	// - `hide` (default): `os_hidden = true`, as described above.
	// - `private-and-share-with-users`: hidden, and visible only to the
	//   owner and, as image members, the projects whose instances use it
	//   (Glance keeps members only on `shared` images, so it becomes
	//   `shared` with exactly those). Left unchanged when Nova cannot say
	//   who uses it.
	// - `delete-unused`: deleted when no instance uses it; an image in
	//   use, protected, or whose use Nova cannot tell is hidden instead.
	//   A UEC root file system takes its kernel and ramdisk with it.
	Retire string `mapstructure:"retire" required:"false"`
	// Print what the retire policy would do to older images, and change
	// none of them. The new image is published.
	RetireDryRun bool `mapstructure:"retire_dry_run" required:"false"`

	// `windows` or `linux`. Defaults to `windows` when a winbake build
	// manifest is found; otherwise the image's `/etc/os-release` is read
	// (without mounting, from its ext2/3/4 partitions) and a Linux image
	// gets `os_type = linux`, `os_distro` and `os_version` from it; an
	// image without one is published with the generic Windows properties
	// as before. `properties` win over what is read.
	OSType string `mapstructure:"os_type" required:"false"`
	// How the image is published: `disk` (default): one whole-disk image,
	// as distributions publish them. `uec`: the triple of Ubuntu's
	// Enterprise Cloud images: the kernel (container and disk format
	// `aki`), the initramfs (`ari`) and the root file system (`ami`) that
	// names them with `kernel_id` and `ramdisk_id`; uploaded in that
	// order, deleted together when one fails, and rotated together.
	Layout string `mapstructure:"layout" required:"false"`
	// `uec`: the kernel to upload. Defaults to the newest
	// `vmlinuz-<version>` in the image's `/boot`.
	KernelFile string `mapstructure:"kernel_file" required:"false"`
	// `uec`: the initramfs to upload. Defaults to the one of the kernel in
	// the image's `/boot` (`initrd.img-<version>`,
	// `initramfs-<version>.img`).
	RamdiskFile string `mapstructure:"ramdisk_file" required:"false"`

	// Path of the winbake build manifest (`<vm_name>.json`, written by
	// `winbake-qemu`) the image properties are derived from. Defaults to the
	// manifest of the input artifact: the builder's own, or the one next to
	// the image file of a `winbake-compress` artifact.
	Manifest string `mapstructure:"manifest" required:"false"`
	// Upload this image file instead of the input artifact's disk.
	ImageFile string `mapstructure:"image_file" required:"false"`

	ctx interpolate.Context
}

var familyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

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
	var errs *packersdk.MultiError
	add := func(format string, a ...interface{}) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...))
	}

	if strings.TrimSpace(c.Name) == "" {
		add("image_name: is required, e.g. image_name = \"Windows Server 2022 - x64\"")
	}
	c.Visibility = strings.ToLower(strings.TrimSpace(c.Visibility))
	if c.Visibility == "" {
		c.Visibility = "private"
	} else if !oneOf(c.Visibility, visibilities) {
		add("visibility: %q is not supported; use one of %s", c.Visibility, strings.Join(visibilities, ", "))
	}
	c.ContainerFormat = strings.ToLower(strings.TrimSpace(c.ContainerFormat))
	if c.ContainerFormat == "" {
		c.ContainerFormat = "bare"
	} else if !oneOf(c.ContainerFormat, containerFormats) {
		add("container_format: %q is not supported; use one of %s", c.ContainerFormat, strings.Join(containerFormats, ", "))
	}
	if c.MinDisk < 0 {
		add("min_disk: %d is negative; give GiB, 0 or more", c.MinDisk)
	}
	if c.MinRAM < 0 {
		add("min_ram: %d is negative; give MiB, 0 or more", c.MinRAM)
	}
	for k := range c.Properties {
		switch {
		case strings.TrimSpace(k) == "":
			add("properties: an empty property name is not allowed")
		case strings.HasPrefix(k, "os_glance_"):
			add("properties: %q uses the prefix os_glance_, which Glance reserves; rename it", k)
		case reservedImageFields[k]:
			add("properties: %q is an image field, not a property; use the %s setting or remove it", k, fieldSetting(k))
		}
	}
	c.Method = strings.ToLower(strings.TrimSpace(c.Method))
	switch c.Method {
	case "":
		c.Method = MethodUpload
	case MethodUpload, MethodGlanceDirect:
	default:
		add("method: %q is not supported; use %q or %q", c.Method, MethodUpload, MethodGlanceDirect)
	}
	if c.Method == MethodUpload && len(c.Stores) > 1 {
		add("stores: method \"upload\" writes to one store, got %d; give one store or use method = \"glance-direct\"", len(c.Stores))
	}
	for _, s := range c.Stores {
		if strings.TrimSpace(s) == "" {
			add("stores: an empty store ID is not allowed")
		}
	}
	if c.ImportTimeout == 0 {
		c.ImportTimeout = 30 * time.Minute
	} else if c.ImportTimeout < 0 {
		add("import_timeout: %s is negative; give a duration like \"30m\"", c.ImportTimeout)
	}
	switch c.OSType {
	case "", "windows", "linux":
	default:
		add("os_type: %q is not supported; use \"windows\" or \"linux\"", c.OSType)
	}
	switch c.Layout {
	case "":
		c.Layout = LayoutDisk
	case LayoutDisk, LayoutUEC:
	default:
		add("layout: %q is not supported; use %q (one whole-disk image) or %q (kernel, ramdisk and root file system)", c.Layout, LayoutDisk, LayoutUEC)
	}
	for _, k := range []string{"kernel_id", "ramdisk_id"} {
		if _, ok := c.Properties[k]; !ok {
			continue
		}
		if c.Layout == LayoutUEC {
			add("properties: %s is set by layout = \"uec\" to the kernel and ramdisk it uploads; remove it", k)
		} else {
			// Nova boots such an image with the kernel it names, and
			// Ironic takes it for a partition image.
			add("properties: %s on a whole-disk image makes Nova boot it with a separate kernel and Ironic treat it as a partition image; remove it, or use layout = \"uec\"", k)
		}
	}
	if c.Layout == LayoutDisk {
		switch c.ContainerFormat {
		case "aki", "ari", "ami":
			add("container_format: %q is a part of a UEC triple; use layout = \"uec\", which sets aki, ari and ami itself", c.ContainerFormat)
		}
		if c.KernelFile != "" || c.RamdiskFile != "" {
			add("kernel_file, ramdisk_file: need layout = \"uec\"")
		}
	} else {
		if c.ContainerFormat != "bare" {
			add("container_format: layout = \"uec\" sets aki, ari and ami itself; remove container_format")
		}
		if c.OSType == "windows" {
			add("layout: \"uec\" publishes a Linux kernel, initramfs and root file system; it needs a Linux image")
		}
		for field, f := range map[string]string{"kernel_file": c.KernelFile, "ramdisk_file": c.RamdiskFile} {
			if f == "" {
				continue
			}
			if st, err := os.Stat(f); err != nil {
				add("%s: %v", field, err)
			} else if !st.Mode().IsRegular() || st.Size() == 0 {
				add("%s: %s is not a non-empty regular file", field, f)
			}
		}
	}
	if c.Family != "" && !familyPattern.MatchString(c.Family) {
		add("family: %q is not a valid family name; use letters, digits, '.', '_' and '-' (up to 63 characters), e.g. \"ws2022\"", c.Family)
	}
	if c.KeepVisible < 0 {
		add("keep_visible: %d is negative; use 0 (hide nothing) or the number of newest images to keep visible", c.KeepVisible)
	} else if c.KeepVisible > 0 && c.Family == "" {
		add("keep_visible: needs family, the images it counts; set family = \"ws2022\" (for example) or remove keep_visible")
	}
	switch c.Retire {
	case "":
		c.Retire = RetireHide
	case RetireHide, RetireShare, RetireDelete:
	default:
		add("retire: %q is not supported; use %q, %q or %q", c.Retire, RetireHide, RetireShare, RetireDelete)
	}
	if (c.Retire != RetireHide || c.RetireDryRun) && c.KeepVisible == 0 {
		add("retire, retire_dry_run: act on the images beyond keep_visible; set keep_visible (and family)")
	}
	if c.ComputeEndpoint != "" {
		if u, err := url.Parse(c.ComputeEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("compute_endpoint: %q is not an http(s) URL; use e.g. \"https://nova.example.com:8774/v2.1\"", c.ComputeEndpoint)
		}
	}
	c.Interface = strings.ToLower(strings.TrimSpace(c.Interface))
	switch c.Interface {
	case "", "public", "internal", "admin", "publicurl", "internalurl", "adminurl":
	default:
		add("interface: %q is not supported; use public, internal or admin", c.Interface)
	}
	if c.ImageEndpoint != "" {
		if u, err := url.Parse(c.ImageEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("image_endpoint: %q is not an http(s) URL; use e.g. \"https://glance.example.com:9292\"", c.ImageEndpoint)
		}
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		add("cert: a client certificate needs both cert and key; set both or neither")
	}
	if err := checkName(c.Name); err != nil {
		errs = packersdk.MultiErrorAppend(errs, err)
	}
	errs = packersdk.MultiErrorAppend(errs, checkProperties(c.Properties)...)
	errs = packersdk.MultiErrorAppend(errs, c.checkTLSFiles()...)

	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// reservedImageFields are image attributes that must be set through their own
// settings (or are read-only), not as properties.
var reservedImageFields = map[string]bool{
	"name": true, "image_name": true, "visibility": true, "tags": true, "min_disk": true, "min_ram": true, "protected": true,
	"disk_format": true, "container_format": true, "id": true, "status": true, "checksum": true,
	"os_hash_algo": true, "os_hash_value": true, "size": true, "virtual_size": true, "owner": true,
	"created_at": true, "updated_at": true, "file": true, "schema": true, "self": true, "locations": true,
	"direct_url": true, "stores": true, "os_hidden": true,
}

func fieldSetting(k string) string {
	switch k {
	case "visibility", "tags", "min_disk", "min_ram", "protected", "container_format", "stores":
		return k
	case "name", "image_name":
		return "image_name"
	case "os_hidden":
		return "keep_visible"
	}
	return "(none: Glance sets it)"
}

func oneOf(s string, list []string) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}
