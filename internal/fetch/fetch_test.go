package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func TestDownloadOnceIntoTheCache(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	body := []byte(strings.Repeat("cloudbase-init ", 1000))
	sum := sha256.Sum256(body)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	url := srv.URL + "/downloads/CloudbaseInitSetup_Stable_x64.msi?x=1"
	checksum := "sha256:" + hex.EncodeToString(sum[:])
	ui := &packersdk.MockUi{}

	first, err := Download(context.Background(), ui, "winbake-test", url, checksum)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Download(context.Background(), ui, "winbake-test", url, checksum)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || filepath.Base(first) != "CloudbaseInitSetup_Stable_x64.msi" || requests.Load() != 1 {
		t.Errorf("paths %s, %s after %d requests; want one download of CloudbaseInitSetup_Stable_x64.msi, reused", first, second, requests.Load())
	}
	if got, _ := os.ReadFile(first); string(got) != string(body) {
		t.Errorf("cached file holds %d bytes, want the %d served", len(got), len(body))
	}

	// A wrong checksum downloads again, fails, and leaves no file behind.
	wrong := "sha256:" + strings.Repeat("0", 64)
	if _, err := Download(context.Background(), ui, "winbake-test", url, wrong); err == nil ||
		!strings.Contains(err.Error(), "has SHA-256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("wrong checksum: %v", err)
	}
	dir := filepath.Join(os.Getenv("PACKER_CACHE_DIR"), "winbake-test", strings.Repeat("0", 64))
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left after a failed download: %v", entries)
	}
}

func TestDownloadHTTPError(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Download(context.Background(), &packersdk.MockUi{}, "winbake-test", srv.URL+"/x.msi", "sha256:"+strings.Repeat("a", 64))
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("error %v, want HTTP 404", err)
	}
}

func TestCheckSHA256(t *testing.T) {
	for checksum, ok := range map[string]bool{
		"sha256:" + strings.Repeat("aB", 32): true,
		strings.Repeat("0", 64):              true,
		"sha256:" + strings.Repeat("a", 63):  false,
		"md5:" + strings.Repeat("a", 32):     false,
		"":                                   false,
	} {
		if err := CheckSHA256("f", checksum); (err == nil) != ok {
			t.Errorf("CheckSHA256(%q) = %v", checksum, err)
		}
	}
}
