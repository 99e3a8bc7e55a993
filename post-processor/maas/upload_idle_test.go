package maas

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/idle"
	"github.com/winbake/packer-plugin-winbake/internal/testing/maasserver"
)

// MAAS stops reading chunk 2 halfway and never answers: the upload fails
// once upload_idle_timeout passes without progress, naming the chunk and
// the setting, and the new resource is deleted.
func TestStalledChunkDeletesTheResource(t *testing.T) {
	in := compressed(t, "dd.gz", 12)
	srv := maasserver.New(maasserver.Options{StallChunk: 2})
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		_, err := publish(context.Background(), configure(t, srv, map[string]interface{}{"upload_idle_timeout": "1s"}), newTestUI(), in)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the upload to a stalled MAAS still runs after two minutes")
	}
	var stall *idle.StallError
	if !errors.As(err, &stall) || !strings.HasPrefix(err.Error(), "uploading chunk 2") || !strings.Contains(err.Error(), "upload_idle_timeout") {
		t.Fatalf("err %v, want the stall of chunk 2 naming upload_idle_timeout", err)
	}
	if res := srv.Resources(); len(res) != 0 {
		t.Errorf("the half-uploaded resource is left in MAAS: %+v", res)
	}
	if n := countMethod(srv, "DELETE", "boot-resources"); n != 1 {
		t.Errorf("%d DELETE calls, want 1", n)
	}
}

func TestUploadIdleTimeoutSetting(t *testing.T) {
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	if c := configure(t, srv, nil).config; c.UploadIdleTimeout != 5*time.Minute {
		t.Errorf("upload_idle_timeout defaults to %s, want 5m", c.UploadIdleTimeout)
	}
	var p PostProcessor
	err := p.Configure(map[string]interface{}{"url": srv.MAASURL(), "api_key": maasserver.DefaultAdminKey.String(), "release": "win2022", "upload_idle_timeout": "-1s"})
	if err == nil || !strings.Contains(err.Error(), "upload_idle_timeout: must not be negative") {
		t.Errorf("err %v", err)
	}
}
