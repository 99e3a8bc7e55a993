package glance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/winbake/packer-plugin-winbake/internal/idle"
)

// publisher creates one image in Glance, uploads the file into it and
// checks what Glance stored. Any failure deletes the image.
type publisher struct {
	client   *gophercloud.ServiceClient
	config   *Config
	say      func(string)
	progress func(size int64, file io.Reader) io.ReadCloser // nil: no progress bar
	// pollInterval is how often an import is polled.
	pollInterval time.Duration
}

// createImage registers the image (status queued).
func (p *publisher) createImage(ctx context.Context, src *source, name string) (*images.Image, error) {
	c := p.config
	vis := images.ImageVisibility(c.Visibility)
	minDisk := c.MinDisk
	if minDisk == 0 && src.VirtualSize > 0 {
		minDisk = int((src.VirtualSize + (1<<30 - 1)) >> 30)
	}
	container, props := c.ContainerFormat, src.Properties
	if src.ContainerFormat != "" {
		container = src.ContainerFormat
	}
	if props == nil {
		props = imageProperties(c, src)
	}
	opts := images.CreateOpts{
		Name:            name,
		Visibility:      &vis,
		Tags:            c.Tags,
		ContainerFormat: container,
		DiskFormat:      src.DiskFormat,
		MinDisk:         minDisk,
		MinRAM:          c.MinRAM,
		Protected:       &c.Protected,
		Properties:      props,
	}
	img, err := images.Create(ctx, p.client, opts).Extract()
	if err != nil {
		return nil, fmt.Errorf("creating image %q in %s: %w", name, p.client.Endpoint, explain(err))
	}
	return img, nil
}

// upload sends the file by the configured method and waits for the image to
// become active.
func (p *publisher) upload(ctx context.Context, img *images.Image, src *source) (_ *hashingBody, err error) {
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var progress func(int64) io.ReadCloser
	if p.progress != nil {
		progress = func(size int64) io.ReadCloser { return p.progress(size, f) }
	}
	body := newHashingBody(f, src.Size, progress)
	defer body.Close()

	headers := map[string]string{
		"Content-Type": "application/octet-stream",
		// Validated by Glance ≥ 31 (2025.2), ignored by older ones.
		"x-openstack-image-size": fmt.Sprint(src.Size),
	}
	started := time.Now()
	defer func() {
		if err == nil {
			d := time.Since(started)
			p.say(fmt.Sprintf("Sent %d MiB in %.1f s (%.1f MiB/s)", src.Size>>20, d.Seconds(), float64(src.Size)/(1<<20)/d.Seconds()))
		}
	}()
	switch p.config.Method {
	case MethodUpload:
		if len(p.config.Stores) == 1 {
			headers["X-Image-Meta-Store"] = p.config.Stores[0]
		}
		p.say(fmt.Sprintf("Uploading %s (%s, %d bytes) to image %s", src.Path, src.DiskFormat, src.Size, img.ID))
		if err := p.put(ctx, p.client.ServiceURL("images", img.ID, "file"), body, headers, "uploading "+src.Path+" to image "+img.ID); err != nil {
			return body, err
		}
	case MethodGlanceDirect:
		p.say(fmt.Sprintf("Staging %s (%s, %d bytes) for image %s", src.Path, src.DiskFormat, src.Size, img.ID))
		if err := p.put(ctx, p.client.ServiceURL("images", img.ID, "stage"), body, headers, "staging "+src.Path+" for image "+img.ID); err != nil {
			return body, err
		}
		p.say(fmt.Sprintf("Importing image %s (glance-direct, stores %v)", img.ID, p.config.Stores))
		if err := imageimport.Create(ctx, p.client, img.ID, importRequest{Stores: p.config.Stores}).ExtractErr(); err != nil {
			return body, fmt.Errorf("importing image %s: %w", img.ID, explain(err))
		}
	}
	return body, nil
}

// put sends body to url, failing when it makes no progress for
// upload_idle_timeout: Glance takes no data, or does not answer once it
// has all of it.
func (p *publisher) put(ctx context.Context, url string, body *hashingBody, headers map[string]string, what string) error {
	ctx, dog := idle.Watch(ctx, p.config.UploadIdleTimeout, what, "upload_idle_timeout")
	defer dog.Stop()
	body.setTouch(dog.Touch)
	defer body.setTouch(nil)
	_, err := p.client.Put(ctx, url, body, nil, &gophercloud.RequestOpts{MoreHeaders: headers, OkCodes: []int{204}})
	if stall := dog.Err(ctx); stall != nil {
		return stall
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, explain(err))
	}
	return nil
}

// waitActive waits until the image leaves the transitional states and
// returns it; anything but active is an error.
func (p *publisher) waitActive(ctx context.Context, id string, timeout time.Duration) (*images.Image, error) {
	deadline := time.Now().Add(timeout)
	for {
		img, err := images.Get(ctx, p.client, id).Extract()
		if err != nil {
			return nil, fmt.Errorf("reading image %s: %w", id, explain(err))
		}
		if failed, _ := img.Properties["os_glance_failed_import"].(string); failed != "" {
			return img, fmt.Errorf("image %s: Glance could not import it into store(s) %s; see `openstack image task list` and the Glance log", id, failed)
		}
		switch img.Status {
		case images.ImageStatusActive:
			return img, nil
		case images.ImageStatusKilled, images.ImageStatusDeleted, images.ImageStatusPendingDelete, images.ImageStatusDeactivated:
			return img, fmt.Errorf("image %s ended in status %s instead of active", id, img.Status)
		case images.ImageStatusQueued:
			// After a 204, a queued image means Glance dropped the data
			// (an import reverts to queued when it fails).
			if p.config.Method == MethodUpload {
				return img, fmt.Errorf("image %s is still queued after the upload; Glance did not keep the data", id)
			}
		}
		if time.Now().After(deadline) {
			return img, fmt.Errorf("image %s still %s after import_timeout %s", id, img.Status, timeout)
		}
		select {
		case <-ctx.Done():
			return img, ctx.Err()
		case <-time.After(p.pollInterval):
		}
	}
}

// verify compares Glance's checksum and os_hash_value with what was sent.
func verify(img *images.Image, body *hashingBody) error {
	md5hex, sha512hex, complete := body.sums()
	if !complete {
		return fmt.Errorf("image %s: only %d of %d bytes were read from the file", img.ID, body.read, body.size)
	}
	if img.SizeBytes != body.size {
		return fmt.Errorf("image %s: Glance stored %d bytes, the file has %d", img.ID, img.SizeBytes, body.size)
	}
	if !strings.EqualFold(img.Checksum, md5hex) {
		return fmt.Errorf("image %s: Glance's checksum (MD5) %s differs from the uploaded data's %s; the data was corrupted on the way", img.ID, img.Checksum, md5hex)
	}
	algo, _ := img.Properties["os_hash_algo"].(string)
	value, _ := img.Properties["os_hash_value"].(string)
	switch algo {
	case "sha512":
		if !strings.EqualFold(value, sha512hex) {
			return fmt.Errorf("image %s: Glance's os_hash_value (SHA-512) %s differs from the uploaded data's %s; the data was corrupted on the way", img.ID, value, sha512hex)
		}
	case "":
		// Glance before Rocky has no multihash; MD5 was checked.
	default:
		// hashing_algorithm is configurable; only SHA-512 is computed
		// while streaming, MD5 was checked.
	}
	return nil
}

// deleteImage removes a half-made image, unprotecting it first. It runs with
// its own context: the build's may already be cancelled.
func (p *publisher) deleteImage(id string, protected bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if protected {
		_, _ = images.Update(ctx, p.client, id, images.UpdateOpts{images.ReplaceImageProtected{NewProtected: false}}).Extract()
	}
	err := images.Delete(ctx, p.client, id).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return fmt.Errorf("deleting the failed image %s: %w; delete it with `openstack image delete %s`", id, explain(err), id)
	}
	return nil
}

// importRequest is the glance-direct import body with the multi-store
// fields imageimport.CreateOpts lacks.
type importRequest struct{ Stores []string }

func (r importRequest) ToImportCreateMap() (map[string]any, error) {
	m := map[string]any{"method": map[string]any{"name": string(imageimport.GlanceDirectMethod)}}
	if len(r.Stores) > 0 {
		m["stores"] = r.Stores
		m["all_stores_must_succeed"] = true
	}
	return m, nil
}

// familyQuery lists the active images of a family owned by one project,
// hidden or not (Glance lists os_hidden images only when asked), newest
// first.
type familyQuery struct {
	family, owner string
	hidden        bool
}

func (q familyQuery) ToImageListQuery() (string, error) {
	v := url.Values{}
	v.Set("family", q.family)
	v.Set("owner", q.owner)
	v.Set("status", string(images.ImageStatusActive))
	v.Set("os_hidden", fmt.Sprint(q.hidden))
	v.Set("sort", "created_at:desc")
	v.Set("limit", "100")
	return "?" + v.Encode(), nil
}

// explain turns Glance's status codes into what to do.
func explain(err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &code) {
		return err
	}
	body := strings.TrimSpace(string(code.Body))
	if len(body) > 400 {
		body = body[:400] + "..."
	}
	switch code.Actual {
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("image data refused by Glance as too large (413: image_size_cap or the project's image quota): %s", body)
	case http.StatusUnauthorized:
		return fmt.Errorf("token refused by Glance (401): %s", body)
	case http.StatusForbidden:
		return fmt.Errorf("not allowed by Glance's policy (403): %s", body)
	case http.StatusConflict:
		return fmt.Errorf("the image is in the wrong state (409): %s", body)
	}
	return fmt.Errorf("HTTP %d from %s %s: %s", code.Actual, code.Method, code.URL, body)
}
