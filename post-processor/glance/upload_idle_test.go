package glance

import (
	"strings"
	"testing"
	"time"
)

func TestUploadIdleTimeoutSetting(t *testing.T) {
	if c := configure(t, map[string]interface{}{"image_name": "x"}).config; c.UploadIdleTimeout != 5*time.Minute {
		t.Errorf("upload_idle_timeout defaults to %s, want 5m", c.UploadIdleTimeout)
	}
	var p PostProcessor
	if err := p.Configure(map[string]interface{}{"image_name": "x", "upload_idle_timeout": "-1s"}); err == nil || !strings.Contains(err.Error(), "upload_idle_timeout: -1s is negative") {
		t.Errorf("err %v", err)
	}
}
