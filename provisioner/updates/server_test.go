package updates

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The package server answers only the given files under its per-build
// token; anything else on the host, another token, or a listing is 404.
func TestPackageServerServesOnlyItsFiles(t *testing.T) {
	dir := t.TempDir()
	paths := writePackages(t, dir, pkgOther, pkgNotApplicable)
	secret := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("not a package"), 0o600); err != nil {
		t.Fatal(err)
	}
	var pkgs []*Package
	for _, p := range paths {
		pk, err := describe(p, "")
		if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, pk)
	}
	srv, err := startServer("127.0.0.1", pkgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	other, err := startServer("127.0.0.1", pkgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if srv.token == other.token || len(srv.token) < 32 {
		t.Errorf("tokens %q and %q: not unique per build", srv.token, other.token)
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i, pk := range pkgs {
		want, _ := os.ReadFile(pk.LocalPath)
		if code, body := get(srv.URL("127.0.0.1", i, pk)); code != 200 || body != string(want) {
			t.Errorf("%s: HTTP %d, %d bytes", pk.Name, code, len(body))
		}
	}
	base := strings.TrimSuffix(srv.URL("127.0.0.1", 0, pkgs[0]), "/0/"+pkgs[0].Name)
	for _, u := range []string{
		base + "/",
		base + "/0/secret.txt",
		base + "/2/secret.txt",
		base + "/0/../../" + filepath.Base(secret),
		base + "/1/" + pkgs[0].Name, // right file, wrong slot
		strings.Replace(base, srv.token, other.token, 1) + "/0/" + pkgs[0].Name,
		strings.TrimSuffix(base, srv.token) + pkgs[0].Name,
	} {
		if code, _ := get(u); code != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", u, code)
		}
	}
}

// The CBS identity DISM will list a package under is read from the file:
// a .cab's update.mum, an .msu's unattend .xml.
func TestDescribeReadsTheIdentity(t *testing.T) {
	paths := writePackages(t, t.TempDir(), pkgSSU, pkgLCU, pkgOther)
	want := map[string]string{
		pkgSSU.Name:   "Package_for_ServicingStack_2700~31bf3856ad364e35~amd64~~20348.2700.1.0",
		pkgLCU.Name:   "Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2762.1.8",
		pkgOther.Name: "Package_for_KB5000010~31bf3856ad364e35~amd64~~10.0.1.0",
	}
	for _, p := range paths {
		pk, err := describe(p, "")
		if err != nil {
			t.Fatal(err)
		}
		if pk.Identity != want[pk.Name] {
			t.Errorf("%s: identity %q, want %q", pk.Name, pk.Identity, want[pk.Name])
		}
	}
}
