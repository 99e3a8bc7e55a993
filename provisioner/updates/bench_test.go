package updates

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// BenchmarkUpdatesDelivery (make bench-updates) moves packages into the
// stand-in guest both ways in the same run and the same guest: the HTTP
// channel (package server + winbake-agent fetch with SHA-256 check) with
// WINBAKE_BENCH_HTTP_MIB of packages (default 1024), and Packer's WinRM
// Upload with a WINBAKE_BENCH_WINRM_MIB sample (default 16); and, as the
// yardstick of the HTTP channel, a plain loopback HTTP copy of the same
// packages into files on the same disk. It reports the throughputs and
// writes "updates-delivery speedup: N.Nx over WinRM; HTTP delivery ...
// GiB/s, R of a plain loopback copy (... GiB/s)" to the file
// WINBAKE_BENCH_RESULT names, when set.
func BenchmarkUpdatesDelivery(b *testing.B) {
	httpMiB := envInt(b, "WINBAKE_BENCH_HTTP_MIB", 1024)
	winrmMiB := envInt(b, "WINBAKE_BENCH_WINRM_MIB", 16)
	const files = 4
	for i := 0; i < b.N; i++ {
		e := newEnv(b, winsim.PowerOptions{})
		var pkgs []*Package
		for n := 0; n < files; n++ {
			pf := testguest.PackageFile{Name: fmt.Sprintf("windows10.0-kb50000%02d-x64.cab", n), KB: fmt.Sprintf("50000%02d", n),
				PackageName: fmt.Sprintf("Package_for_KB50000%02d", n), Version: "10.0.1.0", Padding: httpMiB << 20 / files,
				Spec: winsim.PackageSpec{Result: "installs"}}
			path := writePackages(b, e.dir, pf)[0]
			pk, err := describe(path, "")
			if err != nil {
				b.Fatal(err)
			}
			pkgs = append(pkgs, pk)
		}
		var httpBytes int64
		for _, pk := range pkgs {
			httpBytes += pk.Size
		}
		p := &Provisioner{poll: 100 * time.Millisecond}
		if err := p.Prepare(map[string]any{"packages": []string{filepath.Join(e.dir, "*.cab")}}); err != nil {
			b.Fatal(err)
		}
		ui := quietUi{&packersdk.BasicUi{Reader: strings.NewReader(""), Writer: io.Discard, ErrorWriter: io.Discard}}
		g := &guest{comm: e.comm, ui: ui, wait: time.Minute, poll: 100 * time.Millisecond}
		data := map[string]any{"WinbakeHostIP": "127.0.0.1", "WinbakeHostBindIP": "127.0.0.1"}
		ctx := context.Background()
		// The yardstick runs before and after the delivery, so that neither
		// gets the page cache or the machine's load the other had.
		syscall.Sync() // earlier writes are not written back during the runs
		copyBefore := plainLoopbackCopy(b, pkgs)
		syscall.Sync()
		start := time.Now()
		if err := p.deliver(ctx, ui, g, pkgs, data); err != nil {
			b.Fatal(err)
		}
		httpSecs := time.Since(start).Seconds()

		syscall.Sync()
		copyAfter := plainLoopbackCopy(b, pkgs)
		copySecs := (copyBefore + copyAfter) / 2

		sample := filepath.Join(e.dir, "sample.bin")
		if err := os.WriteFile(sample, make([]byte, winrmMiB<<20), 0o644); err != nil {
			b.Fatal(err)
		}
		pk := &Package{LocalPath: sample, Name: "sample.bin", Size: int64(winrmMiB) << 20}
		start = time.Now()
		if err := uploadFile(context.Background(), e.comm.Communicator, `C:\ProgramData\winbake\bench\sample.bin`, pk, time.Hour); err != nil {
			b.Fatal(err)
		}
		winrmSecs := time.Since(start).Seconds()

		httpRate := float64(httpBytes) / (1 << 20) / httpSecs
		copyRate := float64(httpBytes) / (1 << 20) / copySecs
		winrmRate := float64(pk.Size) / (1 << 20) / winrmSecs
		b.ReportMetric(httpRate, "http-MiB/s")
		b.ReportMetric(copyRate, "copy-MiB/s")
		b.ReportMetric(winrmRate, "winrm-MiB/s")
		line := fmt.Sprintf("updates-delivery speedup: %.1fx over WinRM; HTTP delivery %.2f GiB/s, %.2f of a plain loopback copy (%.2f GiB/s)",
			httpRate/winrmRate, httpRate/1024, httpRate/copyRate, copyRate/1024)
		b.Logf("HTTP delivery (package server, winbake-agent fetch, SHA-256 checked, into the stand-in's disk): %d MiB in %.2fs (%.1f MiB/s)",
			httpBytes>>20, httpSecs, httpRate)
		b.Logf("plain loopback copy (HTTP GET of the same files into files on the same disk, no check): %d MiB in %.2fs before and %.2fs after (mean %.1f MiB/s)",
			httpBytes>>20, copyBefore, copyAfter, copyRate)
		b.Logf("WinRM upload: %d MiB in %.2fs (%.2f MiB/s)", winrmMiB, winrmSecs, winrmRate)
		b.Logf("%s", line)
		if out := os.Getenv("WINBAKE_BENCH_RESULT"); out != "" {
			if err := os.WriteFile(out, []byte(line+"\n"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// plainLoopbackCopy is the yardstick of the HTTP delivery: the packages
// fetched over loopback HTTP by a plain client into plain files on the same
// file system, as `curl -o` would, without a digest. It returns the
// seconds taken.
func plainLoopbackCopy(b *testing.B, pkgs []*Package) float64 {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil || i < 0 || i >= len(pkgs) {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, pkgs[i].LocalPath)
	}))
	defer srv.Close()
	dir := b.TempDir()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for i := range pkgs {
		resp, err := client.Get(fmt.Sprintf("%s/%d", srv.URL, i))
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, pkgs[i].Name))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(f, resp.Body, buf)
		_ = resp.Body.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil || n != pkgs[i].Size {
			b.Fatalf("plain copy of %s: %d of %d bytes: %v", pkgs[i].Name, n, pkgs[i].Size, err)
		}
	}
	return time.Since(start).Seconds()
}

func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number of MiB", name, s)
	}
	return n
}

// quietUi discards messages and progress.
type quietUi struct{ *packersdk.BasicUi }

func (quietUi) TrackProgress(_ string, _, _ int64, stream io.ReadCloser) io.ReadCloser { return stream }
