package maas

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/testing/maasserver"
	"github.com/winbake/packer-plugin-winbake/post-processor/compress"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// requireTools fails the test when a command winbake-compress runs is
// missing: the inputs are made by the real winbake-compress.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not on PATH; these tests run winbake-compress for real: %v", n, err)
		}
	}
}

// writeRawDisk writes a 10 MiB raw disk: 9 MiB of incompressible bytes (so
// every compressed form spans several 4 MiB chunks), then zeros.
func writeRawDisk(t *testing.T, path string, seed uint64) {
	t.Helper()
	b := make([]byte, 10<<20)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < 9<<20; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	copy(b, "WINBAKE MAAS TEST DISK")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compressed runs the real winbake-compress on a fresh raw disk and returns
// its artifact.
func compressed(t *testing.T, format string, seed uint64) *compress.Artifact {
	t.Helper()
	requireTools(t, "qemu-img")
	if format == "dd.xz" {
		requireTools(t, "xz")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	writeRawDisk(t, raw, seed)
	out := filepath.Join(dir, "out", "windows."+format)
	p := &compress.PostProcessor{}
	if err := p.Configure(map[string]interface{}{"format": format, "output": out}); err != nil {
		t.Fatal(err)
	}
	in := &packersdk.MockArtifact{BuilderIdValue: "winbake.test", FilesValue: []string{raw}}
	a, _, _, err := p.PostProcess(context.Background(), newTestUI(), in)
	if err != nil {
		t.Fatalf("winbake-compress format %s: %v", format, err)
	}
	return a.(*compress.Artifact)
}

// configure returns a post-processor for srv configured from cfg on top of
// url, api_key and release.
func configure(t *testing.T, srv *maasserver.Server, cfg map[string]interface{}) *PostProcessor {
	t.Helper()
	full := map[string]interface{}{
		"url":     srv.MAASURL(),
		"api_key": maasserver.DefaultAdminKey.String(),
		"release": "win2022",
	}
	for k, v := range cfg {
		full[k] = v
	}
	p := &PostProcessor{pollInterval: 10 * time.Millisecond}
	if err := p.Configure(full); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return p
}

// testUI records what the post-processor says; onRead, when set, runs for
// every read of the progress-tracked upload stream.
type testUI struct {
	packersdk.BasicUi
	mu     sync.Mutex
	said   []string
	onRead func()
}

func newTestUI() *testUI {
	return &testUI{BasicUi: packersdk.BasicUi{
		Reader:      strings.NewReader(""),
		Writer:      io.Discard,
		ErrorWriter: io.Discard,
		PB:          &packersdk.NoopProgressTracker{},
	}}
}

func (u *testUI) Say(msg string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.said = append(u.said, msg)
}

func (u *testUI) Sayf(format string, args ...any) { u.Say(fmt.Sprintf(format, args...)) }

func (u *testUI) Error(msg string) { u.Say("ERROR: " + msg) }

func (u *testUI) messages() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.said, "\n")
}

// The tests watch reads through Packer's progress bar, which Packer draws
// when it runs in a terminal.
func init() { progress.Terminal = func() bool { return true } }

func (u *testUI) TrackProgress(src string, cur, total int64, stream io.ReadCloser) io.ReadCloser {
	if u.onRead == nil {
		return stream
	}
	return &hookReader{ReadCloser: stream, hook: u.onRead}
}

type hookReader struct {
	io.ReadCloser
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	h.hook()
	return n, err
}

// publish runs p on input and returns the MAAS artifact.
func publish(ctx context.Context, p *PostProcessor, ui packersdk.Ui, input packersdk.Artifact) (*Artifact, error) {
	a, keep, _, err := p.PostProcess(ctx, ui, input)
	if !keep {
		panic("winbake-maas must keep its input artifact")
	}
	if err != nil {
		if a != nil {
			panic("PostProcess returned an artifact with an error")
		}
		return nil, err
	}
	return a.(*Artifact), nil
}

// countMethod counts the requests with method whose path contains part.
func countMethod(srv *maasserver.Server, method, part string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == method && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}
