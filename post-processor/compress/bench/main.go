// Command bench measures winbake-compress against what users would run
// instead, on one disk: a 16 GiB virtual disk holding ~4 GiB of mixed data
// (incompressible, allocated zeros, text-like, repeated blocks), and the
// same data in a 64 GiB disk. The baselines: qemu-img (Packer's default
// zlib qcow2, the fastest zstd flags, vhdx, stream-optimized vmdk), gzip,
// pigz, zstd and xz -T0 on the raw disk. Run it with `make bench-compress`,
// which installs the missing tools (scripts/deps.sh); a missing tool is an
// error, never a skipped baseline.
//
// Environment: BENCH_DATA_GIB (default 4) and BENCH_DISK_GIB (default 16)
// scale the disk for trial runs on small machines; BENCH_DIR is where the
// files go (default: a new directory under the system temp dir, removed at
// the end); BENCH_ONLY, a comma-separated subset of qcow2, vhdx, vmdk, gz,
// zstd, xz and 64g, runs only those groups; BENCH_CPUPROFILE, a directory
// where each winbake run writes its CPU profile (<format>.pprof) for
// `go tool pprof`.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/post-processor/compress"
)

const (
	gib     = int64(1) << 30
	extent  = int64(64) << 20 // data is written in extents of this size
	mibStep = int64(1) << 20
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-compress:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int64) (int64, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive whole number of GiB", name, v)
	}
	return n, nil
}

// groups are the parts of the benchmark BENCH_ONLY can select.
var groups = []string{"qcow2", "vhdx", "vmdk", "gz", "zstd", "xz", "64g"}

// tools are the commands each group runs, with their Debian packages.
var tools = map[string][][2]string{
	"qcow2": {{"qemu-img", "qemu-utils"}},
	"vhdx":  {{"qemu-img", "qemu-utils"}},
	"vmdk":  {{"qemu-img", "qemu-utils"}},
	"gz":    {{"gzip", "gzip"}, {"pigz", "pigz"}},
	"zstd":  {{"zstd", "zstd"}},
	"xz":    {{"xz", "xz-utils"}},
	"64g":   {{"qemu-img", "qemu-utils"}},
}

func selected() (map[string]bool, error) {
	sel := map[string]bool{}
	only := strings.TrimSpace(os.Getenv("BENCH_ONLY"))
	if only == "" {
		for _, g := range groups {
			sel[g] = true
		}
		return sel, nil
	}
	for _, g := range strings.Split(only, ",") {
		g = strings.TrimSpace(g)
		known := false
		for _, k := range groups {
			known = known || k == g
		}
		if !known {
			return nil, fmt.Errorf("BENCH_ONLY: %q is not one of %s", g, strings.Join(groups, ", "))
		}
		sel[g] = true
	}
	return sel, nil
}

type result struct {
	d    time.Duration
	size int64
}

func run() error {
	log.SetOutput(io.Discard) // the post-processor's ui messages
	dataGiB, err := envInt("BENCH_DATA_GIB", 4)
	if err != nil {
		return err
	}
	diskGiB, err := envInt("BENCH_DISK_GIB", 16)
	if err != nil {
		return err
	}
	sel, err := selected()
	if err != nil {
		return err
	}
	var missing []string
	for g := range sel {
		for _, t := range append(tools[g], [2]string{"qemu-img", "qemu-utils"}) {
			if _, err := exec.LookPath(t[0]); err != nil {
				missing = append(missing, fmt.Sprintf("%s (Debian package %s)", t[0], t[1]))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run `make deps` (scripts/deps.sh installs them)", strings.Join(missing, ", "))
	}
	dir := os.Getenv("BENCH_DIR")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "winbake-bench-compress-"); err != nil {
			return err
		}
	} else if dir, err = os.MkdirTemp(dir, "winbake-bench-compress-"); err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// Inputs, the outputs (removed after each run) and the 64 GiB variant.
	need := uint64(dataGiB*gib) * 4
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Bavail*uint64(st.Bsize) < need {
		return fmt.Errorf("%s has %d GiB free, the benchmark needs ~%d GiB", dir, st.Bavail*uint64(st.Bsize)>>30, need>>30)
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine: %d cores, load average %s", runtime.NumCPU(), load)
	fmt.Printf("disk: %d GiB virtual holding %d GiB of data (1/4 each incompressible, allocated zeros, text-like, repeated blocks) in %s\n",
		diskGiB, dataGiB, dir)
	raw := filepath.Join(dir, "disk.raw")
	if err := writeDisk(raw, diskGiB*gib, dataGiB*gib); err != nil {
		return err
	}
	qcow := filepath.Join(dir, "disk.qcow2")
	if err := sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow); err != nil {
		return err
	}
	fmt.Println("input: disk.qcow2 (uncompressed qcow2, what winbake-qemu builds) for qemu-img and winbake; its raw twin disk.raw for gzip, pigz, zstd and xz")

	// Read both inputs once, so that no tool pays for the first read.
	for _, f := range []string{qcow, raw} {
		if err := sh("sh", "-c", `cat "$0" > /dev/null`, f); err != nil {
			return err
		}
	}

	measure := func(name string, f func(out string) error) (result, error) {
		out := filepath.Join(dir, "out-"+strings.NewReplacer(" ", "-", "/", "-").Replace(name))
		dropCaches()
		start := time.Now()
		if err := f(out); err != nil {
			return result{}, fmt.Errorf("%s: %w", name, err)
		}
		d := time.Since(start)
		fi, err := os.Stat(out)
		if err != nil {
			return result{}, err
		}
		_ = os.Remove(out)
		fmt.Printf("%-44s %8.2f s %10.1f MiB\n", name, d.Seconds(), float64(fi.Size())/(1<<20))
		return result{d, fi.Size()}, nil
	}
	winbake := func(input, format string) func(string) error {
		return func(out string) error { return winbakeCompress(input, format, out) }
	}
	shellOut := func(cmdline string) func(string) error {
		return func(out string) error { return sh("sh", "-c", cmdline+` > "$0"`, out) }
	}
	qemuImg := func(args ...string) func(string) error {
		return func(out string) error {
			return sh("qemu-img", append(append([]string{"convert", "-f", "qcow2"}, args...), qcow, out)...)
		}
	}
	type step struct {
		group, key, name string
		f                func(string) error
	}
	steps := []step{
		{"qcow2", "qemu-zlib", "qemu-img convert -c -O qcow2 (zlib)", qemuImg("-c", "-O", "qcow2")},
		{"qcow2", "qemu-zstd", "qemu-img zstd -m 8 -W", qemuImg("-c", "-O", "qcow2", "-o", "compression_type=zstd", "-m", "8", "-W")},
		{"qcow2", "wb-qcow2", "winbake qcow2 (defaults)", winbake(qcow, "qcow2")},
		{"vhdx", "qemu-vhdx", "qemu-img -O vhdx (dynamic)", qemuImg("-O", "vhdx", "-o", "subformat=dynamic", "-m", "16")},
		{"vhdx", "wb-vhdx", "winbake vhdx", winbake(qcow, "vhdx")},
		{"vmdk", "qemu-vmdk", "qemu-img -O vmdk (streamOptimized)", qemuImg("-O", "vmdk", "-o", "subformat=streamOptimized", "-m", "16")},
		{"vmdk", "wb-vmdk", "winbake vmdk", winbake(qcow, "vmdk")},
		{"gz", "gzip", "gzip -c", shellOut(fmt.Sprintf("gzip -c %q", raw))},
		{"gz", "pigz", fmt.Sprintf("pigz -c (%d threads)", runtime.NumCPU()), shellOut(fmt.Sprintf("pigz -c %q", raw))},
		{"gz", "wb-gz", "winbake dd.gz", winbake(qcow, "dd.gz")},
		{"zstd", "zstd", "zstd -T0 -3 -c (raw stream, for reference)", shellOut(fmt.Sprintf("zstd -q -T0 -3 -c %q", raw))},
		{"xz", "xz", "xz -T0 -6 -c", shellOut(fmt.Sprintf("xz -T0 -6 -c %q", raw))},
		{"xz", "wb-xz", "winbake dd.xz", winbake(qcow, "dd.xz")},
	}
	res := map[string]result{}
	for _, s := range steps {
		if !sel[s.group] {
			continue
		}
		r, err := measure(s.name, s.f)
		if err != nil {
			return err
		}
		res[s.key] = r
	}
	if err := os.Remove(raw); err != nil {
		return err
	}

	big := 4 * diskGiB
	if sel["64g"] {
		// The same data in a disk four times the size.
		raw64 := filepath.Join(dir, "disk64.raw")
		if err := writeDisk(raw64, big*gib, dataGiB*gib); err != nil {
			return err
		}
		qcow64 := filepath.Join(dir, "disk64.qcow2")
		if err := sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw64, qcow64); err != nil {
			return err
		}
		_ = os.Remove(raw64)
		if err := sh("sh", "-c", `cat "$0" > /dev/null`, qcow64); err != nil {
			return err
		}
		if res["wb-gz64"], err = measure(fmt.Sprintf("winbake dd.gz, same data in %d GiB", big), winbake(qcow64, "dd.gz")); err != nil {
			return err
		}
		if res["wb-qcow2-64"], err = measure(fmt.Sprintf("winbake qcow2, same data in %d GiB", big), winbake(qcow64, "qcow2")); err != nil {
			return err
		}
	}

	// speed is how many times faster than the baseline b winbake's w ran.
	speed := func(b, w string) string {
		rb, okb := res[b]
		rw, okw := res[w]
		if !okb || !okw {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", rb.d.Seconds()/rw.d.Seconds())
	}
	size := func(w, b string) string {
		rb, okb := res[b]
		rw, okw := res[w]
		if !okb || !okw {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", float64(rw.size)/float64(rb.size))
	}
	timeRatio := func(a, b string) string {
		ra, oka := res[a]
		rb, okb := res[b]
		if !oka || !okb {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", ra.d.Seconds()/rb.d.Seconds())
	}
	fmt.Printf("compress speedup vs qemu-img: %s (size ratio %s), vs best qemu-img: %s (size ratio %s), "+
		"vhdx vs qemu-img: %s (size ratio %s), vmdk vs qemu-img: %s (size ratio %s), dd.gz vs gzip: %s, vs pigz: %s (size ratio %s), "+
		"dd.xz vs xz -T0: %s (size ratio %s), %dG/%dG time: dd.gz %s, qcow2 %s\n",
		speed("qemu-zlib", "wb-qcow2"), size("wb-qcow2", "qemu-zlib"),
		speed("qemu-zstd", "wb-qcow2"), size("wb-qcow2", "qemu-zstd"),
		speed("qemu-vhdx", "wb-vhdx"), size("wb-vhdx", "qemu-vhdx"),
		speed("qemu-vmdk", "wb-vmdk"), size("wb-vmdk", "qemu-vmdk"),
		speed("gzip", "wb-gz"), speed("pigz", "wb-gz"), size("wb-gz", "pigz"),
		speed("xz", "wb-xz"), size("wb-xz", "xz"),
		big, diskGiB, timeRatio("wb-gz64", "wb-gz"), timeRatio("wb-qcow2-64", "wb-qcow2"))
	return nil
}

// winbakeCompress runs the winbake-compress post-processor as Packer would.
func winbakeCompress(input, format, out string) error {
	if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
		f, err := os.Create(filepath.Join(dir, format+".pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var pp compress.PostProcessor
	if err := pp.Configure(map[string]interface{}{"format": format, "output": out}); err != nil {
		return err
	}
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: io.Discard, ErrorWriter: os.Stderr,
		PB: &packersdk.NoopProgressTracker{}}
	_, _, _, err := pp.PostProcess(context.Background(), ui,
		&packersdk.MockArtifact{BuilderIdValue: "bench", FilesValue: []string{input}})
	return err
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// dropCaches writes back dirty pages so one run's writes do not slow the
// next; the input stays cached for every tool alike.
func dropCaches() { syscall.Sync() }

// writeDisk writes a sparse raw disk of size bytes holding data bytes in
// 64 MiB extents spread evenly, cycling through four kinds of content.
func writeDisk(path string, size, data int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	n := data / extent
	stride := size / n / mibStep * mibStep
	rng := rand.New(rand.NewPCG(11, 12))
	chacha := rand.NewChaCha8([32]byte{42})
	text := textLike(rng, 8<<20)
	blocks := make([][]byte, 16)
	for i := range blocks {
		blocks[i] = make([]byte, 64<<10)
		_, _ = chacha.Read(blocks[i])
	}
	buf := make([]byte, extent)
	for i := int64(0); i < n; i++ {
		switch i % 4 {
		case 0: // incompressible
			_, _ = chacha.Read(buf)
		case 1: // allocated zeros
			clear(buf)
		case 2: // text-like
			for off := 0; off < len(buf); off += len(text) {
				copy(buf[off:], text[rng.IntN(len(text)/2):])
			}
		case 3: // repeated blocks
			for off := 0; off < len(buf); off += 64 << 10 {
				copy(buf[off:], blocks[rng.IntN(len(blocks))])
			}
		}
		if _, err := f.WriteAt(buf, i*stride); err != nil {
			return err
		}
	}
	return f.Close()
}

// textLike returns n bytes of log- and registry-like text.
func textLike(rng *rand.Rand, n int) []byte {
	words := strings.Fields("C:\\Windows\\System32 HKLM\\SOFTWARE\\Microsoft Windows Update KB5034439 " +
		"installed successfully servicing stack component store DISM cbs.log Info CSI 00000001 " +
		"Microsoft-Windows-Foundation-Package amd64 31bf3856ad364e35 10.0.20348.2227 staged resolved " +
		"the operation completed error 0x800f0922 winbake sysprep generalize oobe specialize")
	b := make([]byte, 0, n+64)
	for len(b) < n {
		b = append(b, words[rng.IntN(len(words))]...)
		if rng.IntN(12) == 0 {
			b = append(b, "\r\n"...)
			b = strconv.AppendInt(b, int64(rng.Uint32()), 16)
		}
		b = append(b, ' ')
	}
	return b[:n]
}
