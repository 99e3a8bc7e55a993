package glance

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/idle"
	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// stallReader passes the first `after` bytes and then blocks, as a Glance
// whose store stopped taking data: it reads nothing more until released.
type stallReader struct {
	r       io.Reader
	after   int64
	seen    int64
	stalled chan struct{}
	release <-chan struct{}
	once    sync.Once
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.seen >= s.after {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
		return 0, errors.New("released by the test")
	}
	if int64(len(p)) > s.after-s.seen {
		p = p[:s.after-s.seen]
	}
	n, err := s.r.Read(p)
	s.seen += int64(n)
	return n, err
}

// Glance stops taking data after 1 MiB of a 16 MiB upload and never
// answers: the upload fails once upload_idle_timeout passes without
// progress, naming the setting, and the image is deleted.
func TestStalledUploadFailsAndLeavesNoImage(t *testing.T) {
	needLab(t)
	release := make(chan struct{})
	stalled := make(chan struct{})
	endpoint := proxyToGlance(t, func(r io.Reader) io.Reader {
		return &stallReader{r: r, after: 1 << 20, stalled: stalled, release: release}
	})
	// Registered after proxyToGlance's: runs first, so the proxy's
	// handler can end and the test server close.
	t.Cleanup(func() { close(release) })
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 16<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name,
		"image_endpoint": endpoint, "upload_idle_timeout": "2s"})
	ui, out := testUi()
	done := make(chan error, 1)
	go func() {
		_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the upload to a stalled Glance still runs after two minutes")
	}
	select {
	case <-stalled:
	default:
		t.Fatal("the proxy never stalled")
	}
	var stall *idle.StallError
	if !errors.As(err, &stall) || !strings.Contains(err.Error(), "upload_idle_timeout") {
		t.Fatalf("err %v, want the stall naming upload_idle_timeout", err)
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("image left behind after the stall: %s (%s)\n%s", left[0].ID, left[0].Status, out)
	}
	if !strings.Contains(out.String(), "Deleted the incomplete image") {
		t.Errorf("the log does not say the image was deleted:\n%s", out)
	}
}

// Glance answers the upload with 503 (an overloaded glance-api behind its
// load balancer): the error carries the status, and the image is deleted.
func TestGlance5xxDuringUploadLeavesNoImage(t *testing.T) {
	needLab(t)
	target, _ := url.Parse(lab.glanceURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/file") {
			refused.Add(1)
			_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
			http.Error(w, "503 Service Unavailable: no server is available to handle this request (test)", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	writeRaw(t, raw, 4<<20)
	name := uniqueName(t)
	t.Cleanup(func() { deleteImagesNamed(t, name) })
	p := configure(t, map[string]interface{}{"cloud": "winbake-test", "clouds_file": lab.cloudsFile, "image_name": name, "image_endpoint": srv.URL})
	ui, out := testUi()
	_, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: raw, Format: "raw", DiskFormat: "raw"}}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("err %v, want the 503", err)
	}
	if refused.Load() == 0 {
		t.Fatal("the upload never reached the proxy")
	}
	if left := imagesNamed(t, name); len(left) != 0 {
		t.Errorf("image left behind after the 503: %s (%s)\n%s", left[0].ID, left[0].Status, out)
	}
}
