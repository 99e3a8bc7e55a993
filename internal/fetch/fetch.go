// Package fetch downloads a file a build needs (an update package, the
// cloudbase-init MSI) once into Packer's cache, verified against its
// SHA-256, and reuses the cached copy while its content still matches.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// IdleTimeout is how long a download may go without receiving a byte.
const IdleTimeout = 2 * time.Minute

var sha256RE = regexp.MustCompile(`^(sha256:)?[0-9a-fA-F]{64}$`)

// CheckSHA256 checks a checksum as winbake takes it: "sha256:<64 hex>" or
// the 64 hex digits alone. field names the setting in the error.
func CheckSHA256(field, checksum string) error {
	if !sha256RE.MatchString(checksum) {
		return fmt.Errorf("%s: %q is not a SHA-256; give \"sha256:\" and 64 hex digits (sha256sum prints them)", field, checksum)
	}
	return nil
}

// IsURL reports whether s is an http or https URL rather than a path.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// Download fetches url into Packer's cache (under cacheName/<sha256>/)
// unless a copy with the checksum is there, and returns the file's path.
// The file gets its name only once it is complete and verified.
func Download(ctx context.Context, ui packersdk.Ui, cacheName, url, checksum string) (string, error) {
	want := strings.ToLower(strings.TrimPrefix(checksum, "sha256:"))
	name := filepath.Base(strings.SplitN(url, "?", 2)[0])
	dir, err := packersdk.CachePath(cacheName, want)
	if err != nil {
		return "", err
	}
	dest := filepath.Join(dir, name)
	if got, _, err := diskcheck.FileSHA256(ctx, dest); err == nil && got == want {
		ui.Say(fmt.Sprintf("Using the cached %s", dest))
		return dest, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: HTTP %s", url, resp.Status)
	}
	tmp, err := os.CreateTemp(dir, name+".*.part")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	body := progress.Track(ui, name, resp.ContentLength, &idleReader{r: resp.Body, cancel: cancel})
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	body.Close()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%s has SHA-256 %s, the checksum says %s", url, got, want)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", err
	}
	return dest, nil
}

// idleReader cancels the request when no byte arrives for IdleTimeout.
type idleReader struct {
	r      io.ReadCloser
	cancel context.CancelFunc
}

func (i *idleReader) Read(p []byte) (int, error) {
	t := time.AfterFunc(IdleTimeout, i.cancel)
	n, err := i.r.Read(p)
	if !t.Stop() && err != nil {
		err = fmt.Errorf("no data for %s: %w", IdleTimeout, err)
	}
	return n, err
}

func (i *idleReader) Close() error { return i.r.Close() }
