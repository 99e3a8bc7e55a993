package glance

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// PostProcessor publishes the build's disk image to OpenStack Glance.
type PostProcessor struct {
	config Config
	// getenv reads the OS_* variables; tests replace it.
	getenv func(string) string
}

var _ packersdk.PostProcessor = (*PostProcessor)(nil)

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error {
	return p.config.Prepare(raws...)
}

// PostProcess creates the image, streams the file into it, verifies the
// hashes and applies keep_visible. Whatever fails after the image was
// created deletes it again.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	c := &p.config
	getenv := p.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	src, err := resolveSource(ctx, c, input)
	if err != nil {
		return nil, true, false, err
	}
	if err := detectLinux(ctx, c, src); err != nil {
		return nil, true, false, err
	}
	switch {
	case src.Linux != nil && src.Linux.OSRelease != nil:
		r := src.Linux.OSRelease
		ui.Say(fmt.Sprintf("Linux image: %s (os-release ID %s, VERSION_ID %q, read from %s of partition %d)", r.PrettyName, r.ID, r.VersionID, r.Path, r.Partition))
	case src.Linux != nil:
		ui.Say("Linux image (os_type = \"linux\"); os_distro and os_version from properties")
	case src.Manifest != nil:
		ui.Say(fmt.Sprintf("Image properties from the build manifest %s", src.ManifestPath))
	default:
		ui.Say("No winbake build manifest found next to the image; only the generic Windows properties are set (set manifest to point at <vm_name>.json)")
	}
	if err := checkMergedProperties(ui, c, src); err != nil {
		return nil, true, false, err
	}

	client, auth, err := connect(ctx, &c.AuthConfig, getenv)
	if err != nil {
		return nil, true, false, err
	}
	log.Printf("[INFO] winbake-glance: logged in to %s as %q (project %q, credentials from %s); Glance at %s",
		auth.AuthURL, auth.User, auth.Project, auth.Description, client.Endpoint)

	pub := &publisher{
		client: client, config: c, say: ui.Say, pollInterval: 2 * time.Second,
		progress: func(size int64, f io.Reader) io.ReadCloser {
			return progress.Track(ui, src.Path, size, nopCloser{f})
		},
	}
	if c.Layout == LayoutUEC {
		kernel, ramdisk, root, err := pub.publishUEC(ctx, c, src)
		if err != nil {
			return nil, true, false, err
		}
		sha512hex, _ := root.Properties["os_hash_value"].(string)
		a := &Artifact{
			ImageID: root.ID, Name: root.Name, Endpoint: client.Endpoint, Region: auth.Region,
			DiskFormat: root.DiskFormat, Checksum: root.Checksum, SHA512: sha512hex, Size: root.SizeBytes,
			Visibility: c.Visibility, Family: c.Family, KernelID: kernel.ID, RamdiskID: ramdisk.ID,
		}
		ui.Say(fmt.Sprintf("UEC triple published: root %s (kernel_id %s, ramdisk_id %s)", root.ID, kernel.ID, ramdisk.ID))
		return p.finish(ctx, pub, auth, a, root)
	}
	img, err := pub.createImage(ctx, src, c.Name)
	if err != nil {
		return nil, true, false, err
	}
	ui.Say(fmt.Sprintf("Created image %s (%q, disk_format %s, visibility %s)", img.ID, img.Name, src.DiskFormat, c.Visibility))

	fail := func(err error) (packersdk.Artifact, bool, bool, error) {
		ui.Error(err.Error())
		if derr := pub.deleteImage(img.ID, c.Protected); derr != nil {
			return nil, true, false, fmt.Errorf("%w; also %v", err, derr)
		}
		ui.Say(fmt.Sprintf("Deleted the incomplete image %s", img.ID))
		return nil, true, false, err
	}

	body, err := pub.upload(ctx, img, src)
	if err != nil {
		return fail(err)
	}
	timeout := 10 * time.Minute
	if c.Method == MethodGlanceDirect {
		timeout = c.ImportTimeout
	}
	done, err := pub.waitActive(ctx, img.ID, timeout)
	if err != nil {
		return fail(err)
	}
	if err := verify(done, body); err != nil {
		return fail(err)
	}
	sha512hex, _ := done.Properties["os_hash_value"].(string)
	ui.Say(fmt.Sprintf("Image %s is active; Glance's MD5 %s and SHA-512 match the file", img.ID, done.Checksum))

	a := &Artifact{
		ImageID: img.ID, Name: img.Name, Endpoint: client.Endpoint, Region: auth.Region,
		DiskFormat: src.DiskFormat, Checksum: done.Checksum, SHA512: sha512hex, Size: done.SizeBytes,
		Visibility: c.Visibility, Family: c.Family,
	}
	return p.finish(ctx, pub, auth, a, done)
}

// finish applies the retire policy to the family's older images; the new
// image is published whatever happens here.
func (p *PostProcessor) finish(ctx context.Context, pub *publisher, auth authSource, a *Artifact, done *images.Image) (packersdk.Artifact, bool, bool, error) {
	if p.config.KeepVisible == 0 {
		return a, true, false, nil
	}
	plan, err := pub.planRetire(ctx, done, auth.Compute)
	if err == nil {
		plan, err = pub.retire(ctx, plan)
	}
	a.Retired = plan
	for _, r := range plan {
		if r.Done && (r.Action == "hide" || r.Action == "share") {
			a.HiddenOlder = append(a.HiddenOlder, r.ImageID)
		}
	}
	if err != nil {
		// The new image is good; say what is left to do.
		return a, true, false, fmt.Errorf("image %s was published, but keep_visible failed: %w", a.ImageID, err)
	}
	return a, true, false, nil
}
