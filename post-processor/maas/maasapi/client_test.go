package maasapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/maasserver"
)

func TestParseAPIKey(t *testing.T) {
	c, err := ParseAPIKey(" a:b:c\n")
	if err != nil || c != (Credentials{"a", "b", "c"}) {
		t.Fatalf("ParseAPIKey = %+v, %v", c, err)
	}
	for _, bad := range []string{"", "a:b", "a:b:c:d", "a::c"} {
		_, err := ParseAPIKey(bad)
		if err == nil {
			t.Errorf("ParseAPIKey(%q) accepted", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseAPIKey(%q) error shows the key: %v", bad, err)
		}
	}
}

func TestAuthorizationHeader(t *testing.T) {
	c := Credentials{"ck", "tk", "s&cr t"}
	now := time.Unix(1700000000, 0)
	h1, err := c.authorization(now)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := c.authorization(now)
	for _, want := range []string{`OAuth realm=""`, `oauth_signature_method="PLAINTEXT"`, `oauth_consumer_key="ck"`,
		`oauth_token="tk"`, `oauth_signature="%26s%26cr%20t"`, `oauth_timestamp="1700000000"`, `oauth_version="1.0"`} {
		if !strings.Contains(h1, want) {
			t.Errorf("header %s lacks %s", h1, want)
		}
	}
	if h1 == h2 {
		t.Error("two headers share a nonce")
	}
}

func TestNewestSet(t *testing.T) {
	r := BootResource{Sets: map[string]ResourceSet{"20260101": {}, "20260101.2": {}, "20260101.10": {}, "20251231.99": {}}}
	if v, _, _ := r.NewestSet(); v != "20260101.10" {
		t.Errorf("NewestSet = %s, want 20260101.10", v)
	}
}

func TestClientAgainstTestServer(t *testing.T) {
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	k := maasserver.DefaultAdminKey
	c, err := NewClient(srv.MAASURL(), Credentials{k.Consumer, k.Token, k.Secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Create(ctx, CreateOpts{Name: "windows/win2022", Architecture: "amd64/generic", Filetype: "ddgz", SHA256: "x", Size: 1})
	if err == nil || !strings.Contains(err.Error(), "sha256: Ensure this value has at least 64 characters (it has 1).") {
		t.Fatalf("Create with a short sha256: %v", err)
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || len(apiErr.Fields["sha256"]) != 1 {
		t.Errorf("error = %#v, want a 400 *Error with the sha256 field", err)
	}
	res, err := c.Create(ctx, CreateOpts{Name: "windows/win2022", Architecture: "amd64/generic", Filetype: "ddgz",
		SHA256: strings.Repeat("0", 64), Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListUploaded(ctx)
	if err != nil || len(list) != 1 || list[0].ID != res.ID || list[0].Name != "windows/win2022" {
		t.Fatalf("ListUploaded = %+v, %v", list, err)
	}
	if err := c.Delete(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, res.ID); !IsNotFound(err) {
		t.Errorf("Get after Delete: %v, want 404", err)
	}
	if _, err := c.serverURL("http://elsewhere/upload/"); err == nil {
		t.Error("an upload URI on another host was accepted")
	}
}

func TestParseMAASURL(t *testing.T) {
	u, err := ParseMAASURL("http://maas:5240/MAAS")
	if err != nil || u.String() != "http://maas:5240/MAAS/" {
		t.Fatalf("ParseMAASURL = %v, %v", u, err)
	}
	for _, bad := range []string{"maas:5240", "ftp://maas/MAAS", "http:///MAAS", "http://maas/MAAS/api/2.0/", "http://maas/MAAS?x=1"} {
		if _, err := ParseMAASURL(bad); err == nil {
			t.Errorf("ParseMAASURL(%q) accepted", bad)
		}
	}
}
