package updates

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

	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
)

// A package block with a url is downloaded once into Packer's cache,
// checked against its checksum, described like a local file, and taken
// from the cache on the next build; a wrong checksum fails naming the
// block and leaves nothing in the cache.
func TestPackageURLDownloadedOnceAndCached(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	body, err := pkgLCU.Build()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/2026-11/"+pkgLCU.Name {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	url := srv.URL + "/2026-11/" + pkgLCU.Name

	resolve := func(checksum string) ([]*Package, *recordingUi, error) {
		var c Config
		if err := c.Prepare(map[string]any{"package": []map[string]any{{"url": url, "checksum": checksum}}}); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		ui := &recordingUi{Ui: packersdk.TestUi(t)}
		pkgs, err := c.resolvePackages(context.Background(), ui)
		return pkgs, ui, err
	}
	pkgs, _, err := resolve("sha256:" + hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("first build: %v", err)
	}
	if len(pkgs) != 1 || pkgs[0].Name != pkgLCU.Name || pkgs[0].SHA256 != hex.EncodeToString(sum[:]) || pkgs[0].Kind != guestcontract.KindCumulative || pkgs[0].KB != "KB5044281" {
		t.Fatalf("package %+v", pkgs[0])
	}
	if got, _ := os.ReadFile(pkgs[0].LocalPath); string(got) != string(body) {
		t.Fatalf("cached file %s differs from what the server sent", pkgs[0].LocalPath)
	}
	if _, ui, err := resolve("sha256:" + hex.EncodeToString(sum[:])); err != nil || hits.Load() != 1 || !ui.said("Using the cached") {
		t.Errorf("second build: err %v, %d downloads, lines %q; want the cached file and one download in all", err, hits.Load(), ui.lines)
	}

	wrong := strings.Repeat("0", 64)
	_, _, err = resolve("sha256:" + wrong)
	if err == nil || !strings.Contains(err.Error(), "package[0].url") || !strings.Contains(err.Error(), "the checksum says "+wrong) {
		t.Fatalf("wrong checksum: %v", err)
	}
	cached, _ := filepath.Glob(filepath.Join(os.Getenv("PACKER_CACHE_DIR"), "winbake-updates", wrong+"*", "*"))
	if len(cached) != 0 {
		t.Errorf("a failed download left %v in the cache", cached)
	}
}
