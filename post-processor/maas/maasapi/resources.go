package maasapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
)

// BootResource is a MAAS boot resource as the API returns it.
type BootResource struct {
	ID           int                    `json:"id"`
	Type         string                 `json:"type"`
	Name         string                 `json:"name"`
	Architecture string                 `json:"architecture"`
	Title        string                 `json:"title"`
	ResourceURI  string                 `json:"resource_uri"`
	Sets         map[string]ResourceSet `json:"sets"`
}

// ResourceSet is one version of a boot resource.
type ResourceSet struct {
	Version  string                  `json:"version"`
	Label    string                  `json:"label"`
	Size     int64                   `json:"size"`
	Complete bool                    `json:"complete"`
	Progress float64                 `json:"progress"`
	Files    map[string]ResourceFile `json:"files"`
}

// ResourceFile is one file of a resource set.
type ResourceFile struct {
	Filename  string  `json:"filename"`
	Filetype  string  `json:"filetype"`
	SHA256    string  `json:"sha256"`
	Size      int64   `json:"size"`
	Complete  bool    `json:"complete"`
	Progress  float64 `json:"progress"`
	UploadURI string  `json:"upload_uri"`
}

// NewestSet returns the set with the largest version ("YYYYmmdd[.N]") and
// its version, or false when the resource has no sets.
func (r *BootResource) NewestSet() (string, ResourceSet, bool) {
	var best string
	for v := range r.Sets {
		if best == "" || versionLess(best, v) {
			best = v
		}
	}
	if best == "" {
		return "", ResourceSet{}, false
	}
	return best, r.Sets[best], true
}

// versionLess orders set versions "YYYYmmdd" < "YYYYmmdd.1" < "YYYYmmdd.2" < ... < "YYYYmmdd.10".
func versionLess(a, b string) bool {
	ad, an := splitVersion(a)
	bd, bn := splitVersion(b)
	if ad != bd {
		return ad < bd
	}
	return an < bn
}

func splitVersion(v string) (string, int) {
	for i := 0; i < len(v); i++ {
		if v[i] == '.' {
			n, err := strconv.Atoi(v[i+1:])
			if err != nil {
				return v, 0
			}
			return v[:i], n
		}
	}
	return v, 0
}

// CreateOpts are the fields of a boot-resource create call without inline
// content: MAAS then expects the content through UploadChunk.
type CreateOpts struct {
	// Name is "<os>/<release>", e.g. "windows/win2022".
	Name string
	// Architecture is "<arch>/<subarch>", e.g. "amd64/generic".
	Architecture string
	Title        string
	// Filetype is a MAAS upload filetype, e.g. "ddgz".
	Filetype string
	SHA256   string
	Size     int64
	// KeepOld keeps the files of older sets of the same resource; without
	// it MAAS deletes them as soon as the new set is created.
	KeepOld bool
}

// Create posts a new boot resource (multipart/form-data, like the MAAS CLI)
// and returns it with its new set, whose file carries the upload_uri.
func (c *Client) Create(ctx context.Context, o CreateOpts) (*BootResource, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fields := []struct{ k, v string }{
		{"name", o.Name},
		{"architecture", o.Architecture},
		{"title", o.Title},
		{"filetype", o.Filetype},
		{"sha256", o.SHA256},
		{"size", strconv.FormatInt(o.Size, 10)},
		{"base_image", ""},
		{"keep_old", strconv.FormatBool(o.KeepOld)},
	}
	for _, f := range fields {
		if err := w.WriteField(f.k, f.v); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	data, err := c.do(ctx, http.MethodPost, c.apiURL("boot-resources/"), w.FormDataContentType(), &body, int64(body.Len()))
	if err != nil {
		return nil, err
	}
	return decodeResource(data)
}

// Get reads one boot resource.
func (c *Client) Get(ctx context.Context, id int) (*BootResource, error) {
	data, err := c.do(ctx, http.MethodGet, c.apiURL(fmt.Sprintf("boot-resources/%d/", id)), "", nil, 0)
	if err != nil {
		return nil, err
	}
	return decodeResource(data)
}

// ListUploaded lists the uploaded (custom) boot resources, without sets.
func (c *Client) ListUploaded(ctx context.Context) ([]BootResource, error) {
	q := url.Values{"type": {"uploaded"}}
	data, err := c.do(ctx, http.MethodGet, c.apiURL("boot-resources/")+"?"+q.Encode(), "", nil, 0)
	if err != nil {
		return nil, err
	}
	var list []BootResource
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("MAAS returned an unreadable boot-resource list: %w", err)
	}
	return list, nil
}

// Delete deletes a boot resource with all its sets.
func (c *Client) Delete(ctx context.Context, id int) error {
	_, err := c.do(ctx, http.MethodDelete, c.apiURL(fmt.Sprintf("boot-resources/%d/", id)), "", nil, 0)
	return err
}

// UploadChunk appends size bytes read from chunk to the file at uploadURI
// (a path from ResourceFile.UploadURI). Chunks must be sent in order; MAAS
// has no offset or resume API. ctx alone bounds the request
// (RequestTimeout does not apply): the caller watches its progress.
func (c *Client) UploadChunk(ctx context.Context, uploadURI string, chunk io.Reader, size int64) error {
	target, err := c.serverURL(uploadURI)
	if err != nil {
		return err
	}
	_, err = c.send(ctx, http.MethodPut, target, "application/octet-stream", chunk, size)
	return err
}

func decodeResource(data []byte) (*BootResource, error) {
	var r BootResource
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("MAAS returned an unreadable boot resource: %w", err)
	}
	return &r, nil
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
