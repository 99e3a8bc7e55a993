package compress

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkQcow2Writer writes a qcow2 image from a raw disk holding the
// bench-compress mix at a quarter each (incompressible, allocated zeros,
// text-like, repeated blocks; as post-processor/compress/bench writes
// them), 256 MiB of data: the in-process view of `make bench-compress`,
// for profiling (-cpuprofile).
func BenchmarkQcow2Writer(b *testing.B) {
	const kind = 64 << 20
	src := filepath.Join(b.TempDir(), "disk.raw")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	chacha := rand.NewChaCha8([32]byte{7})
	random := make([]byte, kind)
	_, _ = chacha.Read(random)
	words := strings.Fields(`C:\Windows\System32 HKLM\SOFTWARE\Microsoft Windows Update KB5034439 installed successfully ` +
		"servicing stack component store DISM cbs.log Info CSI 00000001 Microsoft-Windows-Foundation-Package amd64 " +
		"31bf3856ad364e35 10.0.20348.2227 staged resolved the operation completed error 0x800f0922 winbake sysprep")
	rng := rand.New(rand.NewPCG(1, 2))
	text := make([]byte, 0, kind+64)
	for len(text) < kind {
		text = append(text, words[rng.IntN(len(words))]...)
		if rng.IntN(12) == 0 {
			text = strconv.AppendInt(append(text, "\r\n"...), int64(rng.Uint32()), 16)
		}
		text = append(text, ' ')
	}
	text = text[:kind]
	blocks := make([]byte, 16<<16)
	_, _ = chacha.Read(blocks)
	repeated := make([]byte, kind)
	for off := 0; off < kind; off += 64 << 10 {
		n := rng.IntN(16)
		copy(repeated[off:], blocks[n<<16:(n+1)<<16])
	}
	for i, part := range [][]byte{random, make([]byte, kind), text, repeated} {
		if _, err := f.WriteAt(part, int64(i)*2*kind); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Truncate(16 * kind); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	layout, ok, err := readLayout(context.Background(), src, imageInfo{Format: "raw", VirtualSize: 16 * kind})
	if err != nil || !ok {
		b.Fatal(ok, err)
	}
	defer layout.Close()
	out := filepath.Join(b.TempDir(), "out.qcow2")
	b.SetBytes(4 * kind)
	b.ResetTimer()
	for range b.N {
		o, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		_, size, err := writeQcow2(context.Background(), layout, o, qcow2Options{clusterBits: qcow2DefaultClusterBits, zstd: true,
			level: qcow2ZstdLevel, workers: runtime.GOMAXPROCS(0)})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/(1<<20), "MiB-out")
		_ = o.Close()
	}
}
