// Package maas implements the winbake-maas post-processor: it publishes the
// raw-disk image written by winbake-compress to MAAS as an uploaded
// boot resource named windows/<release>, through the MAAS API 2.0 (create,
// chunked upload, wait until complete).
package maas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/post-processor/maas/maasapi"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// chunkSize is the size of each upload PUT, as the MAAS CLI sends them; MAAS
// holds each chunk in memory.
const chunkSize = 4 << 20

// PostProcessor is the winbake-maas post-processor.
type PostProcessor struct {
	config Config

	// pollInterval is how often MAAS is asked whether the upload is
	// complete; tests shorten it.
	pollInterval time.Duration
}

var _ packersdk.PostProcessor = new(PostProcessor)

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error {
	return p.config.Prepare(raws...)
}

// PostProcess uploads the input image to MAAS. The input artifact is kept:
// it is the only local copy of the image.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	a, err := p.run(ctx, ui, input)
	if err != nil {
		return nil, true, false, err
	}
	return a, true, false, nil
}

func (p *PostProcessor) run(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (*Artifact, error) {
	c := &p.config
	img, err := inputImage(input)
	if err != nil {
		return nil, err
	}
	detected, err := detectFiletype(img.path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", img.path, err)
	}
	if detected != img.filetype {
		return nil, fmt.Errorf("%s holds %s content but winbake-compress recorded format %q (MAAS filetype %s); "+
			"the file was changed after winbake-compress wrote it, rerun the build (with -force)",
			img.path, describeFiletype(detected), img.format, img.filetype)
	}
	ui.Say(fmt.Sprintf("Checking %s (%s, MAAS filetype %s)", img.path, humanBytes(img.size), img.filetype))
	sum, size, streamErr := checkInputStream(ctx, img)
	if sum != "" && (sum != img.sha256 || size != img.size) {
		return nil, fmt.Errorf("%s has sha256 %s and %d bytes, but winbake-compress recorded sha256 %s and %d bytes; "+
			"the file was changed after winbake-compress wrote it, rerun the build (with -force)",
			img.path, sum, size, img.sha256, img.size)
	}
	if streamErr != nil {
		return nil, streamErr
	}

	creds, err := maasapi.ParseAPIKey(c.APIKey)
	if err != nil {
		return nil, fmt.Errorf("api_key: %w", err)
	}
	hc, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	client, err := maasapi.NewClient(c.URL, creds, hc)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if c.needsLicenceKey() {
		ui.Say(fmt.Sprintf("Note: MAAS demands a licence key to deploy release %s; choose another release name to deploy without one", c.Release))
	}

	u := &upload{ctx: ctx, ui: ui, client: client, cfg: c, img: img, pollInterval: p.pollInterval}
	if u.pollInterval == 0 {
		u.pollInterval = 5 * time.Second
	}
	return u.run()
}

// upload publishes one image. On failure it deletes a resource it created.
type upload struct {
	ctx          context.Context
	ui           packersdk.Ui
	client       *maasapi.Client
	cfg          *Config
	img          *diskFile
	pollInterval time.Duration

	existing *maasapi.BootResource // the resource being replaced, if any
	created  *maasapi.BootResource // the resource as the create call returned it
	version  string                // the set of this upload
}

func (u *upload) run() (*Artifact, error) {
	c := u.cfg
	if err := u.findExisting(); err != nil {
		return nil, err
	}
	a, err := u.publish()
	if err != nil {
		return nil, u.cleanup(err)
	}
	u.ui.Say(fmt.Sprintf("MAAS boot resource %d (%s, %s) is complete: deploy it as OS windows, release %s", a.ResourceID, a.Name, c.Architecture, c.Release))
	return a, nil
}

// findExisting looks for a resource of the same name and architecture.
func (u *upload) findExisting() error {
	c := u.cfg
	list, err := u.client.ListUploaded(u.ctx)
	if err != nil {
		return fmt.Errorf("listing MAAS boot resources: %w", err)
	}
	for i := range list {
		if list[i].Name == c.name() && list[i].Architecture == c.Architecture {
			u.existing = &list[i]
		}
	}
	if u.existing == nil {
		return nil
	}
	if !c.Replace {
		return fmt.Errorf("MAAS already has boot resource %d named %s for %s; set replace = true to replace it, or choose another release",
			u.existing.ID, c.name(), c.Architecture)
	}
	u.ui.Say(fmt.Sprintf("Replacing MAAS boot resource %d (%s, %s); the current image stays deployable until the new one is complete",
		u.existing.ID, c.name(), c.Architecture))
	return nil
}

func (u *upload) publish() (*Artifact, error) {
	c, img := u.cfg, u.img
	u.ui.Say(fmt.Sprintf("Creating MAAS boot resource %s (%s, filetype %s) at %s", c.name(), c.Architecture, img.filetype, u.client.URL()))
	res, err := u.client.Create(u.ctx, maasapi.CreateOpts{
		Name: c.name(), Architecture: c.Architecture, Title: c.Title,
		Filetype: img.filetype, SHA256: img.sha256, Size: img.size,
		// Keep the image being replaced until this one is complete.
		KeepOld: u.existing != nil,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the boot resource: %w", err)
	}
	u.created = res
	version, set, ok := res.NewestSet()
	if !ok || len(set.Files) != 1 {
		return nil, fmt.Errorf("MAAS created boot resource %d without a set holding one file", res.ID)
	}
	u.version = version
	var file maasapi.ResourceFile
	for _, f := range set.Files {
		file = f
	}
	if file.SHA256 != img.sha256 || file.Size != img.size {
		return nil, fmt.Errorf("MAAS boot resource %d set %s expects sha256 %s and %d bytes, winbake sent %s and %d bytes",
			res.ID, version, file.SHA256, file.Size, img.sha256, img.size)
	}

	if file.Complete {
		u.ui.Say("MAAS already stores this exact image; nothing to upload")
	} else {
		if file.UploadURI == "" {
			return nil, fmt.Errorf("MAAS boot resource %d set %s has no upload_uri", res.ID, version)
		}
		if err := u.sendContent(file.UploadURI); err != nil {
			return nil, err
		}
	}
	if err := u.waitComplete(res.ID); err != nil {
		return nil, err
	}
	return &Artifact{ResourceID: res.ID, Name: c.name(), Architecture: c.Architecture, Filetype: img.filetype,
		SHA256: img.sha256, Version: version, MAASURL: u.client.URL()}, nil
}

// sendContent PUTs the file in chunkSize pieces, in order.
func (u *upload) sendContent(uploadURI string) error {
	img := u.img
	f, err := os.Open(img.path)
	if err != nil {
		return err
	}
	r := progress.Track(u.ui, filepath.Base(img.path), img.size, f)
	defer r.Close()
	buf := make([]byte, chunkSize)
	var sent int64
	for n := 1; ; n++ {
		got, err := io.ReadFull(r, buf)
		if got > 0 {
			if err := u.client.UploadChunk(u.ctx, uploadURI, buf[:got]); err != nil {
				return fmt.Errorf("uploading chunk %d (bytes %d-%d of %d): %w", n, sent, sent+int64(got)-1, img.size, err)
			}
			sent += int64(got)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", img.path, err)
		}
	}
	if sent != img.size {
		return fmt.Errorf("%s shrank while uploading: sent %d of %d bytes", img.path, sent, img.size)
	}
	return nil
}

// waitComplete polls the resource until this upload's set is complete.
func (u *upload) waitComplete(id int) error {
	deadline := time.Now().Add(u.cfg.CompleteTimeout)
	said := false
	for {
		res, err := u.client.Get(u.ctx, id)
		if err != nil {
			return fmt.Errorf("reading boot resource %d: %w", id, err)
		}
		set, ok := res.Sets[u.version]
		if !ok {
			return fmt.Errorf("MAAS boot resource %d no longer has set %s (was it replaced or deleted meanwhile?)", id, u.version)
		}
		if set.Complete {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MAAS did not report boot resource %d set %s complete within complete_timeout %s (progress %.0f%%)",
				id, u.version, u.cfg.CompleteTimeout, set.Progress)
		}
		if !said {
			u.ui.Say("Waiting for MAAS to store the image")
			said = true
		}
		select {
		case <-u.ctx.Done():
			return u.ctx.Err()
		case <-time.After(u.pollInterval):
		}
	}
}

// cleanup handles a failed upload: a resource created by this upload is
// deleted. A replaced resource is not: deleting it would delete the image
// being replaced, which MAAS keeps deploying (it uses the newest complete
// set). The incomplete set stays in it: the replacement was created with
// keep_old, MAAS removes no set of a resource at such uploads (winbake's
// later ones keep_old too), and its API deletes whole resources only.
func (u *upload) cleanup(cause error) error {
	if u.created == nil {
		return cause
	}
	if u.existing != nil {
		return fmt.Errorf("%w; MAAS still deploys the previous image of boot resource %d (its newest complete set). "+
			"The incomplete set %s stays in that resource: winbake uploads a replacement with keep_old, and MAAS then removes no set, "+
			"neither now nor when winbake uploads again. Run the build again to publish the image; to get rid of the incomplete set, "+
			"delete boot resource %d in MAAS, which deletes the previous image too, and upload again",
			cause, u.existing.ID, u.version, u.existing.ID)
	}
	// The build context may be cancelled already (Ctrl-C).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u.ui.Say(fmt.Sprintf("Deleting the incomplete MAAS boot resource %d", u.created.ID))
	if err := u.client.Delete(ctx, u.created.ID); err != nil && !maasapi.IsNotFound(err) {
		return fmt.Errorf("%w; deleting the incomplete boot resource %d also failed, delete it in MAAS: %v", cause, u.created.ID, err)
	}
	return cause
}

func describeFiletype(t string) string {
	switch t {
	case "ddgz":
		return "gzip (not tar)"
	case "ddtgz":
		return "gzip-compressed tar"
	case "ddxz":
		return "xz"
	}
	return "uncompressed (raw)"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
