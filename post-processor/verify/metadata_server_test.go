package verify

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOpenStackMetadataServiceAndPasswordPost(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &metadataServer{Mode: ModeOpenStack, MAC: "52:54:00:00:00:02", Metadata: Metadata{UUID: "u-1", Hostname: "h1", UserData: []byte("#ps1\r\necho hi")}}
	port, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if code, body := get(t, base+"/openstack"); code != 200 || !strings.Contains(body, "latest") {
		t.Errorf("/openstack: %d %q", code, body)
	}
	if code, body := get(t, base+"/openstack/latest/meta_data.json"); code != 200 || !strings.Contains(body, `"uuid": "u-1"`) {
		t.Errorf("meta_data.json: %d %q", code, body)
	}
	if code, body := get(t, base+"/openstack/2013-04-04/user_data"); code != 200 || body != "#ps1\r\necho hi" {
		t.Errorf("user_data: %d %q", code, body)
	}
	if code, _ := get(t, base+"/openstack/1999-01-01/meta_data.json"); code != 404 {
		t.Errorf("unknown version: %d, want 404", code)
	}

	// cloudbase-init: RSA PKCS#1 v1.5 with the instance's public key, base64.
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &key.PublicKey, []byte("Gen3rated!pw"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) int {
		resp, err := http.Post(base+"/openstack/latest/password", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(strings.Repeat("A", maxPasswordLength+4)); code != 400 {
		t.Errorf("oversized password post: %d, want 400", code)
	}
	if code := post(base64.StdEncoding.EncodeToString(ct)); code != 200 {
		t.Fatalf("password post: %d", code)
	}
	if code := post(base64.StdEncoding.EncodeToString(ct)); code != 409 {
		t.Errorf("second password post: %d, want 409 as Nova answers", code)
	}
	if code, body := get(t, base+"/openstack/latest/password"); code != 200 || body != base64.StdEncoding.EncodeToString(ct) {
		t.Errorf("password GET: %d %q", code, body)
	}
	plain, err := decryptPassword(key, s.PostedPassword())
	if err != nil || plain != "Gen3rated!pw" {
		t.Errorf("decrypted %q, %v", plain, err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := decryptPassword(other, s.PostedPassword()); err == nil {
		t.Error("the password decrypted with another key")
	}
}

func TestMAASMetadataEndpoints(t *testing.T) {
	s := &metadataServer{Mode: ModeMAAS, Metadata: Metadata{UUID: "node-abc", Hostname: "maas-node", PublicKeys: map[string]string{"k": "ssh-rsa AAAA k"}, UserData: []byte("#ps1_sysnative\r\n")}}
	port, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d/MAAS/metadata/%s", port, maasVersion)
	for path, want := range map[string]string{
		"/meta-data/instance-id": "node-abc", "/meta-data/local-hostname": "maas-node",
		"/meta-data/public-keys": "ssh-rsa AAAA k", "/user-data": "#ps1_sysnative\r\n",
	} {
		if code, body := get(t, base+path); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	// MAAS answers x509 with 200 and no certificate: a 404 would fail
	// cloudbase-init's ConfigWinRMCertificateAuthPlugin at every boot.
	if code, body := get(t, base+"/meta-data/x509"); code != 200 || body != "" {
		t.Errorf("x509: %d %q, want 200 and an empty body", code, body)
	}
	if code, body := get(t, base+"/meta-data/"); code != 200 || body != "instance-id\nlocal-hostname\npublic-keys\nx509" {
		t.Errorf("meta-data/: %d %q", code, body)
	}
	// Without keys and user data: public-keys is an empty list, user-data
	// is 404, as MAAS answers.
	s.Metadata.PublicKeys, s.Metadata.UserData = nil, nil
	for path, want := range map[string]int{"/meta-data/public-keys": 200, "/meta-data/x509": 200, "/user-data": 404, "/meta-data/vendor-data": 404} {
		if code, body := get(t, base+path); code != want || (code == 200 && body != "") {
			t.Errorf("%s without keys and user data: %d %q, want %d", path, code, body, want)
		}
	}
	if code, body := get(t, base+"/meta-data/"); code != 200 || body != "instance-id\nlocal-hostname\nx509" {
		t.Errorf("meta-data/ without keys: %d %q", code, body)
	}
}

func TestReadSerialFindsCloudbaseInitRuns(t *testing.T) {
	log := "winbake-standin: setup: complete\r\n" +
		"2026-11-22 05:00:00.123 1 INFO cloudbaseinit.init [-] Metadata service loaded: 'ConfigDriveService'\n" +
		"2026-11-22 05:00:00.200 1 INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'\n" +
		"2026-11-22 05:00:00.300 1 INFO cloudbaseinit.init [-] Executing plugin 'CreateUserPlugin'\n" +
		"2026-11-22 05:00:00.400 1 INFO cloudbaseinit.init [-] Plugins execution done\n"
	f := readSerial(log)
	if !f.SetupComplete || f.PluginsDone != 1 || f.MetadataService != "ConfigDriveService" ||
		strings.Join(f.Plugins, ",") != "SetHostNamePlugin,CreateUserPlugin" {
		t.Errorf("%+v", f)
	}
}

// A plugin whose last run raised fails the cloudbase-init check:
// cloudbase-init runs it again, and logs the error, at every boot. One
// that failed once and then ran without error does not.
func TestReadSerialFindsFailedPlugins(t *testing.T) {
	log := "2026-11-22 05:00:00.123 1 INFO cloudbaseinit.init [-] Metadata service loaded: 'MaaSHttpService'\n" +
		"2026-11-22 05:00:00.200 1 INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'\n" +
		"2026-11-22 05:00:00.210 1 ERROR cloudbaseinit.init [-] plugin 'SetHostNamePlugin' failed with error 'boom'\n" +
		"2026-11-22 05:00:00.300 1 INFO cloudbaseinit.init [-] Executing plugin 'ConfigWinRMCertificateAuthPlugin'\n" +
		"2026-11-22 05:00:00.310 1 ERROR cloudbaseinit.init [-] plugin 'ConfigWinRMCertificateAuthPlugin' failed with error '404 Client Error: Not Found for url: http://169.254.169.254/MAAS/metadata/2012-03-01/meta-data/x509'\n" +
		"2026-11-22 05:00:00.400 1 INFO cloudbaseinit.init [-] Plugins execution done\n" +
		"2026-11-22 05:01:00.200 2 INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'\n" +
		"2026-11-22 05:01:00.300 2 INFO cloudbaseinit.init [-] Executing plugin 'ConfigWinRMCertificateAuthPlugin'\n" +
		"2026-11-22 05:01:00.310 2 ERROR cloudbaseinit.init [-] plugin 'ConfigWinRMCertificateAuthPlugin' failed with error 'again'\n" +
		"2026-11-22 05:01:00.400 2 INFO cloudbaseinit.init [-] Plugins execution done\n"
	f := readSerial(log)
	if len(f.Failed) != 1 || f.Failed[0] != (pluginFailure{"ConfigWinRMCertificateAuthPlugin", "again"}) || f.PluginsDone != 2 {
		t.Fatalf("%+v", f)
	}
	c := prepared(t, map[string]interface{}{"mode": "maas", "keep_winrm": false})
	r := &Report{}
	(&checker{Config: c, Inst: testInstance(t, c), Serial: f}).Run(context.Background(), r)
	if res, ev := resultOf(r, "cloudbase-init ran its plugins"); res != ResultFail || !strings.Contains(ev, "ConfigWinRMCertificateAuthPlugin (again)") {
		t.Errorf("%s: %s", res, ev)
	}
}

// QEMU's guestfwd carries every guest connection over one stream it opens
// at start: requests arrive one after the other on one connection, each
// saying "Connection: close" as cloudbase-init's client does, and every
// one is answered without the stream being closed.
func TestMetadataServerAnswersEveryRequestOnTheGuestForwardStream(t *testing.T) {
	s := &metadataServer{Mode: ModeOpenStack, MAC: "52:54:00:00:00:02", Metadata: Metadata{UUID: "u-2", Hostname: "h2"}}
	port, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i, path := range []string{"/openstack/latest/meta_data.json", "/openstack/latest/user_data", "/openstack/2013-04-04/meta_data.json"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", path)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := 200
		if path == "/openstack/latest/user_data" {
			want = 404 // no user data
		}
		if resp.StatusCode != want || resp.ContentLength != int64(len(b)) || want == 200 && !strings.Contains(string(b), `"uuid": "u-2"`) {
			t.Errorf("%s: %d, %d bytes of %d: %q", path, resp.StatusCode, len(b), resp.ContentLength, b)
		}
	}
	fmt.Fprintf(c, "POST /openstack/2013-04-04/password HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Length: 8\r\n\r\nYWJjZA==")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 || s.PostedPassword() != "YWJjZA==" {
		t.Errorf("password post: %v %v, stored %q", resp, err, s.PostedPassword())
	}
}
