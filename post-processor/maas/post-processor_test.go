package maas

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/maasserver"
)

// checkChunks asserts the upload of a file came as 4 MiB chunks (the last
// one shorter) adding up to size.
func checkChunks(t *testing.T, chunks []int, size int64) {
	t.Helper()
	var total int64
	for i, c := range chunks {
		if i < len(chunks)-1 && c != chunkSize {
			t.Errorf("chunk %d of %d is %d bytes, want %d: %v", i+1, len(chunks), c, chunkSize, chunks)
		}
		if c <= 0 || c > chunkSize {
			t.Errorf("chunk %d is %d bytes: %v", i+1, c, chunks)
		}
		total += int64(c)
	}
	if total != size {
		t.Errorf("chunks add up to %d bytes, the file has %d: %v", total, size, chunks)
	}
}

func TestPublishEachFiletype(t *testing.T) {
	for _, tc := range []struct {
		format, filetype, stored string
	}{
		{"dd.gz", "ddgz", "root-dd.gz"},
		{"dd.tgz", "ddtgz", "root-dd"},
		{"dd.xz", "ddxz", "root-dd.xz"},
		{"raw", "ddraw", "root-dd.raw"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			in := compressed(t, tc.format, 1)
			// Complete only on the third read: the post-processor must poll.
			srv := maasserver.New(maasserver.Options{PollsUntilComplete: 2})
			defer srv.Close()
			p := configure(t, srv, nil)
			ui := newTestUI()

			a, err := publish(context.Background(), p, ui, in)
			if err != nil {
				t.Fatalf("publish: %v\nui:\n%s", err, ui.messages())
			}

			res := srv.Resources()
			if len(res) != 1 {
				t.Fatalf("MAAS has %d resources, want 1: %+v", len(res), res)
			}
			r := res[0]
			if r.Name != "windows/win2022" || r.Arch != "amd64/generic" || r.Title != "Windows win2022 (winbake)" {
				t.Errorf("resource = %q %q %q, want windows/win2022 amd64/generic \"Windows win2022 (winbake)\"", r.Name, r.Arch, r.Title)
			}
			if len(r.Sets) != 1 || len(r.Sets[0].Files) != 1 {
				t.Fatalf("resource sets = %+v, want one set with one file", r.Sets)
			}
			f := r.Sets[0].Files[0]
			if f.Filetype != tc.filetype || f.Filename != tc.stored {
				t.Errorf("file uploaded as filetype %s (%s), want %s (%s)", f.Filetype, f.Filename, tc.filetype, tc.stored)
			}
			if !f.Complete || f.SHA256 != in.SHA256 || f.Size != in.Size {
				t.Errorf("file = %+v, want complete with sha256 %s size %d", f, in.SHA256, in.Size)
			}
			want, err := os.ReadFile(in.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(srv.Content(f.ID), want) {
				t.Errorf("MAAS stores %d bytes that differ from the %d bytes of %s", len(srv.Content(f.ID)), len(want), in.Path)
			}
			chunks := srv.Chunks(f.ID)
			if len(chunks) < 2 {
				t.Errorf("the %d-byte file went up in %d chunk(s); the fixture is meant to need several", in.Size, len(chunks))
			}
			checkChunks(t, chunks, in.Size)

			if a.Id() != strconv.Itoa(r.ID) || a.State("filetype") != tc.filetype || a.State("name") != "windows/win2022" {
				t.Errorf("artifact id %s, state filetype %v, name %v; want %d, %s, windows/win2022", a.Id(), a.State("filetype"), a.State("name"), r.ID, tc.filetype)
			}
			if gets := countMethod(srv, "GET", "/boot-resources/"+strconv.Itoa(r.ID)+"/"); gets < 3 {
				t.Errorf("the resource was read %d times; completion needs polling until the third read", gets)
			}
			// Every request, each chunk included, carries its own nonce.
			reqs := srv.Requests()
			if n := len(srv.Nonces()); n != len(reqs) {
				t.Errorf("%d distinct OAuth nonces over %d requests", n, len(reqs))
			}
			for _, rq := range reqs {
				if rq.Status >= 300 {
					t.Errorf("request %s %s answered %d", rq.Method, rq.Path, rq.Status)
				}
			}
		})
	}
}

func TestBadAPIKeyIsRefusedAndNeverShown(t *testing.T) {
	in := compressed(t, "dd.gz", 2)
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	k := maasserver.DefaultAdminKey
	wrong := k.Consumer + ":" + k.Token + ":WrongSecretValue123"
	p := configure(t, srv, map[string]interface{}{"api_key": wrong})
	ui := newTestUI()

	_, err := publish(context.Background(), p, ui, in)
	if err == nil {
		t.Fatal("publish with a wrong API key succeeded")
	}
	if !strings.Contains(err.Error(), "Unauthorized") || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("error does not say MAAS refused the api_key: %v", err)
	}
	for _, where := range []string{err.Error(), ui.messages()} {
		if strings.Contains(where, "WrongSecretValue123") || strings.Contains(where, k.Secret) {
			t.Errorf("the token secret appears in the output: %s", where)
		}
	}
	if n := countMethod(srv, "POST", "boot-resources"); n != 0 {
		t.Errorf("%d create calls were made after MAAS refused the key", n)
	}
	if len(srv.Resources()) != 0 {
		t.Errorf("resources were created: %+v", srv.Resources())
	}
}

func TestNonAdminKeyIsForbidden(t *testing.T) {
	in := compressed(t, "dd.gz", 3)
	user := maasserver.Key{Consumer: "userConsumer", Token: "userToken", Secret: "userSecret"}
	srv := maasserver.New(maasserver.Options{Keys: []maasserver.Key{maasserver.DefaultAdminKey, user}})
	defer srv.Close()
	p := configure(t, srv, map[string]interface{}{"api_key": user.String()})

	_, err := publish(context.Background(), p, newTestUI(), in)
	if err == nil || !strings.Contains(err.Error(), "Forbidden") || !strings.Contains(err.Error(), "administrator") {
		t.Fatalf("publish with a non-admin key: err = %v, want a 403 naming the administrator requirement", err)
	}
	if len(srv.Resources()) != 0 {
		t.Errorf("resources were created: %+v", srv.Resources())
	}
}

func TestRefusesInputsMAASCannotDeploy(t *testing.T) {
	gz := compressed(t, "dd.gz", 4)
	xz := compressed(t, "dd.xz", 4)
	for _, tc := range []struct {
		name  string
		input packersdk.Artifact
		want  []string
	}{
		{"not from winbake-compress",
			&packersdk.MockArtifact{BuilderIdValue: "transcend.qemu", FilesValue: []string{gz.Path}},
			[]string{"winbake-compress", `format = "dd.gz"`, "transcend.qemu"}},
		{"qcow2 from winbake-compress",
			&image.Compressed{Outputs: []image.Output{{Path: gz.Path, Format: "qcow2", SHA256: gz.SHA256, Size: gz.Size, DiskFormat: "qcow2"}}},
			[]string{`wrote qcow2`, "MAAS cannot deploy", `add "dd.gz" to winbake-compress's formats`}},
		{"xz content recorded as dd.gz",
			&image.Compressed{Outputs: []image.Output{{Path: xz.Path, Format: "dd.gz", SHA256: xz.SHA256, Size: xz.Size, MaasFiletype: "ddgz"}}},
			[]string{"holds xz content", `"dd.gz"`, "ddgz"}},
		{"gzip content recorded as dd.tgz",
			&image.Compressed{Outputs: []image.Output{{Path: gz.Path, Format: "dd.tgz", SHA256: gz.SHA256, Size: gz.Size, MaasFiletype: "ddtgz"}}},
			[]string{"holds gzip (not tar) content", "ddtgz"}},
		{"gzip content recorded as raw",
			&image.Compressed{Outputs: []image.Output{{Path: gz.Path, Format: "raw", SHA256: gz.SHA256, Size: gz.Size, DiskFormat: "raw"}}},
			[]string{"holds gzip (not tar) content", "ddraw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := maasserver.New(maasserver.Options{})
			defer srv.Close()
			_, err := publish(context.Background(), configure(t, srv, nil), newTestUI(), tc.input)
			if err == nil {
				t.Fatal("publish accepted the input")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests reached MAAS for an input that cannot be deployed", n)
			}
		})
	}
}

func TestFileChangedAfterCompressIsRefused(t *testing.T) {
	in := compressed(t, "dd.gz", 5)
	b, err := os.ReadFile(in.Path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1 // same size, different sha256
	if err := os.WriteFile(in.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	_, err = publish(context.Background(), configure(t, srv, nil), newTestUI(), in)
	if err == nil || !strings.Contains(err.Error(), "recorded sha256 "+in.SHA256) {
		t.Fatalf("err = %v, want the recorded and actual sha256 named", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests reached MAAS", n)
	}
}

func TestChunkFailureDeletesTheResource(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts maasserver.Options
		want string
	}{
		{"500 on chunk 2", maasserver.Options{FailChunk: 2}, "uploading chunk 2"},
		{"connection reset in chunk 2", maasserver.Options{ResetChunk: 2}, "uploading chunk 2"},
		{"sha256 mismatch at the last byte", maasserver.Options{CorruptChunk: 2}, "Saved content does not match given SHA256 value."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := compressed(t, "dd.gz", 6)
			srv := maasserver.New(tc.opts)
			defer srv.Close()
			ui := newTestUI()
			_, err := publish(context.Background(), configure(t, srv, nil), ui, in)
			if err == nil {
				t.Fatal("publish succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not contain %q: %v", tc.want, err)
			}
			if n := countMethod(srv, "POST", "boot-resources"); n != 1 {
				t.Errorf("%d create calls, want 1", n)
			}
			if n := countMethod(srv, "DELETE", "boot-resources"); n != 1 {
				t.Errorf("%d DELETE calls, want 1", n)
			}
			if res := srv.Resources(); len(res) != 0 {
				t.Errorf("the half-uploaded resource is left in MAAS: %+v", res)
			}
		})
	}
}

func TestCancelDuringUploadDeletesTheResource(t *testing.T) {
	in := compressed(t, "dd.gz", 7)
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ui := newTestUI()
	reads := 0
	ui.onRead = func() {
		// Ctrl-C once the first chunk has gone.
		reads++
		if countMethod(srv, "PUT", "/upload/") >= 1 {
			cancel()
		}
	}
	_, err := publish(ctx, configure(t, srv, nil), ui, in)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want the cancellation", err)
	}
	if res := srv.Resources(); len(res) != 0 {
		t.Errorf("the half-uploaded resource is left in MAAS after cancellation: %+v", res)
	}
	if countMethod(srv, "PUT", "/upload/") >= int(in.Size/chunkSize)+1 {
		t.Errorf("every chunk was sent despite the cancellation")
	}
}

func TestReplaceExistingResource(t *testing.T) {
	first := compressed(t, "dd.gz", 8)
	second := compressed(t, "dd.gz", 9)
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()

	a1, err := publish(context.Background(), configure(t, srv, nil), newTestUI(), first)
	if err != nil {
		t.Fatal(err)
	}

	// Without replace: refused, nothing changes.
	_, err = publish(context.Background(), configure(t, srv, nil), newTestUI(), second)
	if err == nil || !strings.Contains(err.Error(), "replace = true") || !strings.Contains(err.Error(), "boot resource "+a1.Id()) {
		t.Fatalf("err = %v, want a refusal naming the existing resource and replace = true", err)
	}
	if n := countMethod(srv, "POST", "boot-resources"); n != 1 {
		t.Errorf("%d create calls, want only the first", n)
	}

	// The replacement: during the upload the old set is still complete.
	ui := newTestUI()
	oldSeenDuringUpload := false
	ui.onRead = func() {
		if countMethod(srv, "PUT", "/upload/") < 2 {
			return
		}
		for _, r := range srv.Resources() {
			for _, s := range r.Sets {
				for _, f := range s.Files {
					if f.SHA256 == first.SHA256 && f.Complete {
						oldSeenDuringUpload = true
					}
				}
			}
		}
	}
	a2, err := publish(context.Background(), configure(t, srv, map[string]interface{}{"replace": true}), ui, second)
	if err != nil {
		t.Fatalf("replace: %v\n%s", err, ui.messages())
	}
	if !oldSeenDuringUpload {
		t.Error("the existing image was gone while the replacement was uploading")
	}
	if a2.Id() != a1.Id() {
		t.Errorf("the replacement is resource %s, MAAS adds it to the existing resource %s", a2.Id(), a1.Id())
	}
	res := srv.Resources()
	if len(res) != 1 {
		t.Fatalf("resources = %+v, want one", res)
	}
	newest := res[0].Sets[len(res[0].Sets)-1]
	if newest.Version != a2.State("version") || newest.Files[0].SHA256 != second.SHA256 || !newest.Files[0].Complete {
		t.Errorf("newest set = %+v, want the second image complete as set %v", newest, a2.State("version"))
	}
}

func TestFailedReplacementKeepsTheExistingImage(t *testing.T) {
	first := compressed(t, "dd.gz", 10)
	second := compressed(t, "dd.gz", 11)
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	a1, err := publish(context.Background(), configure(t, srv, nil), newTestUI(), first)
	if err != nil {
		t.Fatal(err)
	}
	srv.FailChunkFromNowOn(2, 0)

	_, err = publish(context.Background(), configure(t, srv, map[string]interface{}{"replace": true}), newTestUI(), second)
	if err == nil {
		t.Fatal("the replacement succeeded despite the failing chunk")
	}
	// The message names the resource being replaced (the one MAAS keeps
	// deploying) and the incomplete set, says that keep_old keeps that set
	// for good, and what to do.
	res0 := srv.Resources()
	if len(res0) != 1 {
		t.Fatalf("resources = %+v", res0)
	}
	incomplete := ""
	for _, s := range res0[0].Sets {
		for _, f := range s.Files {
			if !f.Complete {
				incomplete = s.Version
			}
		}
	}
	want := "; MAAS still deploys the previous image of boot resource " + a1.Id() + " (its newest complete set). " +
		"The incomplete set " + incomplete + " stays in that resource: winbake uploads a replacement with keep_old, and MAAS then removes no set, " +
		"neither now nor when winbake uploads again. Run the build again to publish the image; to get rid of the incomplete set, " +
		"delete boot resource " + a1.Id() + " in MAAS, which deletes the previous image too, and upload again"
	if incomplete == "" || !strings.HasPrefix(err.Error(), "uploading chunk 2") || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to start with the failed chunk and end with\n%s", err, want)
	}
	if n := countMethod(srv, "DELETE", "boot-resources"); n != 0 {
		t.Errorf("%d DELETE calls: deleting the resource would delete the image being replaced", n)
	}
	res := srv.Resources()
	if len(res) != 1 {
		t.Fatalf("resources = %+v, want the existing one", res)
	}
	kept := false
	for _, s := range res[0].Sets {
		for _, f := range s.Files {
			kept = kept || (f.SHA256 == first.SHA256 && f.Complete && bytes.Equal(srv.Content(f.ID), mustRead(t, first.Path)))
		}
	}
	if !kept {
		t.Errorf("the existing image is no longer complete in MAAS: %+v", res)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigErrors(t *testing.T) {
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	for _, tc := range []struct {
		name string
		cfg  map[string]interface{}
		want string
	}{
		{"no url", map[string]interface{}{"url": ""}, "url: is required"},
		{"api url", map[string]interface{}{"url": srv.MAASURL() + "/api/2.0/"}, "url: "},
		{"ftp url", map[string]interface{}{"url": "ftp://maas/MAAS"}, "url: "},
		{"no api key", map[string]interface{}{"api_key": ""}, "api_key: is required"},
		{"two-part api key", map[string]interface{}{"api_key": "consumer:SecretPart"}, "api_key: a MAAS API key has three parts"},
		{"no release", map[string]interface{}{"release": ""}, "release: is required"},
		{"custom release", map[string]interface{}{"release": "custom/win2022"}, "custom/ images are deployed as Linux"},
		{"windows/ release", map[string]interface{}{"release": "windows/win2022"}, "winbake adds the windows/ prefix"},
		{"spaces in release", map[string]interface{}{"release": "Windows 2022"}, "release: \"Windows 2022\" is not a valid release name"},
		{"bad architecture", map[string]interface{}{"architecture": "amd64"}, "architecture: \"amd64\" is not <arch>/<subarch>"},
		{"missing CA file", map[string]interface{}{"ca_cert_file": "/nonexistent/ca.pem"}, "ca_cert_file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := map[string]interface{}{"url": srv.MAASURL(), "api_key": maasserver.DefaultAdminKey.String(), "release": "win2022"}
			for k, v := range tc.cfg {
				full[k] = v
			}
			err := (&PostProcessor{}).Configure(full)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Configure error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SecretPart") || strings.Contains(err.Error(), maasserver.DefaultAdminKey.Secret) {
				t.Errorf("the error shows the API key: %v", err)
			}
		})
	}
}

func TestLicenceKeyReleaseIsAnnounced(t *testing.T) {
	in := compressed(t, "dd.gz", 12)
	srv := maasserver.New(maasserver.Options{})
	defer srv.Close()
	ui := newTestUI()
	if _, err := publish(context.Background(), configure(t, srv, map[string]interface{}{"release": "win2019"}), ui, in); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ui.messages(), "MAAS demands a licence key to deploy release win2019") {
		t.Errorf("no licence-key note for win2019:\n%s", ui.messages())
	}
}

func TestTLSOptions(t *testing.T) {
	in := compressed(t, "dd.gz", 13)
	srv := maasserver.New(maasserver.Options{TLS: true})
	defer srv.Close()
	ca := t.TempDir() + "/maas-ca.pem"
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := publish(context.Background(), configure(t, srv, nil), newTestUI(), in)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("publish to an https MAAS with an unknown CA: err = %v, want a certificate error", err)
	}
	a, err := publish(context.Background(), configure(t, srv, map[string]interface{}{"ca_cert_file": ca, "replace": true}), newTestUI(), in)
	if err != nil {
		t.Fatalf("publish with ca_cert_file: %v", err)
	}
	if _, err := publish(context.Background(), configure(t, srv, map[string]interface{}{"insecure_skip_tls_verify": true, "replace": true}), newTestUI(), in); err != nil {
		t.Fatalf("publish with insecure_skip_tls_verify: %v", err)
	}
	if !strings.HasPrefix(a.State("maas_url").(string), "https://") {
		t.Errorf("artifact maas_url = %v", a.State("maas_url"))
	}
}
