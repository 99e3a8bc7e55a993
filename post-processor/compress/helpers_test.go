package compress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// requireTools fails the test when a command the post-processor runs is
// missing: these tests exercise the real qemu-img and xz.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			pkg := map[string]string{"qemu-img": "qemu-utils", "xz": "xz-utils"}[n]
			t.Fatalf("%s is not on PATH; these tests run it for real (apt-get install %s): %v", n, pkg, err)
		}
	}
}

const fixtureSize = 8 << 20

var (
	fixtureOnce sync.Once
	fixtureRaw  []byte
)

// fixtureBytes is the content of the test disk: a boot-sector-like header,
// random blocks (some not cluster aligned), text, zero regions and random
// bytes in the last sector.
func fixtureBytes() []byte {
	fixtureOnce.Do(func() {
		b := make([]byte, fixtureSize)
		rng := rand.New(rand.NewPCG(1, 2))
		fill := func(off, n int) {
			for i := off; i < off+n; i++ {
				b[i] = byte(rng.Uint32())
			}
		}
		copy(b, "WINBAKE TEST DISK\x00")
		b[510], b[511] = 0x55, 0xAA
		fill(1<<20, 64<<10)
		for i := 0; i < 12; i++ {
			fill(5<<20+i*(7<<10)+4096*3, 4096)
		}
		text := []byte("C:\\Windows\\System32\\config\\SYSTEM winbake round-trip text\r\n")
		for off := 3 << 20; off+len(text) < 3<<20+200<<10; off += len(text) {
			copy(b[off:], text)
		}
		fill(fixtureSize-512, 512)
		fixtureRaw = b
	})
	return fixtureRaw
}

// writeRawFixture writes the test disk to path, leaving zero regions sparse.
func writeRawFixture(t *testing.T, path string) {
	t.Helper()
	b := fixtureBytes()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const chunk = 64 << 10
	zero := make([]byte, chunk)
	for off := 0; off < len(b); off += chunk {
		if bytes.Equal(b[off:off+chunk], zero) {
			continue
		}
		if _, err := f.WriteAt(b[off:off+chunk], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// newInput makes a fresh directory holding the test disk as "disk.raw" or
// (converted by qemu-img) "disk.qcow2", for format "qcow2-zlib" with
// zlib-compressed clusters, and returns the disk's path.
func newInput(t *testing.T, format string) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	writeRawFixture(t, raw)
	switch format {
	case "raw":
		return raw
	case "qcow2", "qcow2-zlib":
		q := filepath.Join(dir, "disk.qcow2")
		args := []string{"convert", "-f", "raw", "-O", "qcow2"}
		if format == "qcow2-zlib" {
			args = append(args, "-c", "-o", "compression_type=zlib")
		}
		qemuImg(t, append(args, raw, q)...)
		if err := os.Remove(raw); err != nil {
			t.Fatal(err)
		}
		return q
	}
	t.Fatalf("newInput: unknown format %q", format)
	return ""
}

func qemuImg(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// testUI records what the post-processor says. onSay and onRead, when set,
// are called for every Say and for every read of a progress-tracked stream.
type testUI struct {
	packersdk.BasicUi
	mu     sync.Mutex
	said   []string
	onSay  func(string)
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
	u.said = append(u.said, msg)
	u.mu.Unlock()
	if u.onSay != nil {
		u.onSay(msg)
	}
}

func (u *testUI) Sayf(format string, args ...any) { u.Say(fmt.Sprintf(format, args...)) }

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

// configure returns a post-processor configured from cfg.
func configure(t *testing.T, cfg map[string]interface{}) *PostProcessor {
	t.Helper()
	p := &PostProcessor{}
	if err := p.Configure(cfg); err != nil {
		t.Fatalf("Configure(%v): %v", cfg, err)
	}
	return p
}

func inputArtifact(files ...string) packersdk.Artifact {
	return &packersdk.MockArtifact{BuilderIdValue: "winbake.test", FilesValue: files}
}

// postProcess runs p on an artifact holding files.
func postProcess(ctx context.Context, p *PostProcessor, ui packersdk.Ui, files ...string) (*Artifact, bool, error) {
	a, keep, _, err := p.PostProcess(ctx, ui, inputArtifact(files...))
	if err != nil {
		if a != nil {
			panic("PostProcess returned an artifact with an error")
		}
		return nil, keep, err
	}
	return a.(*Artifact), keep, nil
}
