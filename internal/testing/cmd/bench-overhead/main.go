// Command bench-overhead (make bench-overhead) measures winbake's own cost
// in a whole build: real Packer builds overhead.pkr.hcl (install, offline
// updates with a reboot, sysprep with cloudbase-init, qcow2 + dd.gz, a
// first boot) on the stand-in Windows under TCG, and the time is split into
// the guest's time and winbake's.
//
// The guest's time runs from each QEMU start, restart or power-off the
// guest logs on its serial console until the guest is ready again (its
// "winrm: listening" line) or powered off (the builder's "powered off"
// line), and from every other line the guest logs (a command it runs for
// winbake, DISM, a power transition) to the next line. Everything else, from
// a line winbake or Packer printed to the next line, is winbake's (and
// Packer's): configuration, media, disks, copies, WinRM waits and polling,
// uploads, compression and hashing. Every line of Packer's output and of each VM's
// serial console is timestamped as it appears (the serial logs are read
// every 20 ms), and the table lists where winbake's time goes, interval by
// interval. The last line is
//
//	build-overhead: total T s, guest G s, winbake W s (goal <= 10 s)
//
// It needs the plugin (make build), Packer (make packer) and the stand-in
// ISO (make standin-iso); BENCH_DIR is where the build goes (default: a new
// directory under the system temp dir, removed at the end); BENCH_PLUGIN
// names another plugin binary to measure instead of ./packer-plugin-winbake;
// BENCH_TIMELINE names a file to write every timestamped line to.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
)

//go:embed overhead.pkr.hcl
var template []byte

func main() {
	if len(os.Args) == 3 && os.Args[1] == "report" {
		// bench-overhead report TIMELINE: the table again, from a timeline
		// BENCH_TIMELINE wrote.
		if err := reportFile(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "bench-overhead:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-overhead:", err)
		os.Exit(1)
	}
}

// event is one line of Packer's output ("ui") or of a serial console
// ("serial"), with the time it appeared.
type event struct {
	at     time.Time
	source string
	text   string
}

type timeline struct {
	mu     sync.Mutex
	events []event
}

func (t *timeline) add(source, text string) {
	t.mu.Lock()
	t.events = append(t.events, event{time.Now(), source, text})
	t.mu.Unlock()
}

func run() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	packer := filepath.Join(root, ".tools", "bin", "packer")
	plugin := filepath.Join(root, "packer-plugin-winbake")
	if p := os.Getenv("BENCH_PLUGIN"); p != "" {
		plugin = p // another build of the plugin, to compare
	}
	iso := filepath.Join(root, "build", "standin", "winbake-standin.iso")
	for what, path := range map[string]string{"Packer (make packer)": packer, "the plugin (make build)": plugin, "the stand-in ISO (make standin-iso)": iso} {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s is missing: %w", what, err)
		}
	}
	dir, err := os.MkdirTemp(os.Getenv("BENCH_DIR"), "winbake-bench-overhead-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	password := make([]byte, 12)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	env := append(os.Environ(),
		"PACKER_PLUGIN_PATH="+filepath.Join(dir, "plugins"),
		"PACKER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"CHECKPOINT_DISABLE=1",
		// Through the environment, never on a command line.
		"PKR_VAR_winrm_password=Wb-"+hex.EncodeToString(password)+"-9a",
	)
	if err := runQuiet(env, packer, "plugins", "install", "--path", plugin, "github.com/winbake/winbake"); err != nil {
		return err
	}
	inputs := filepath.Join(dir, "inputs")
	if err := runQuiet(env, "go", "run", "./internal/testing/cmd/winbake-demo", "inputs", inputs); err != nil {
		return err
	}
	tmpl := filepath.Join(dir, "overhead.pkr.hcl")
	if err := os.WriteFile(tmpl, template, 0o644); err != nil {
		return err
	}
	sum, _, err := diskcheck.FileSHA256(context.Background(), iso)
	if err != nil {
		return err
	}

	fmt.Printf("build: %s (install, updates with a reboot, sysprep, qcow2 + dd.gz, verify) on the stand-in under TCG, in %s\n",
		filepath.Join("internal/testing/cmd/bench-overhead", "overhead.pkr.hcl"), dir)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine load average before: %s", load)

	tl := &timeline{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var tails sync.WaitGroup
	tailing := map[string]bool{}
	serialRE := regexp.MustCompile(`serial console in (\S+)$`)

	cmd := exec.Command(packer, "build", "-color=false",
		"-var", "iso="+iso, "-var", "iso_checksum=sha256:"+sum,
		"-var", "output_dir="+filepath.Join(dir, "out"),
		"-var", "updates_dir="+filepath.Join(inputs, "updates"),
		"-var", "cloudbase_init_msi="+filepath.Join(inputs, "CloudbaseInitSetup_Stable_x64.msi"),
		tmpl)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "build.log"))
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	start := time.Now()
	tl.add("ui", "packer build started")
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(logFile, line)
		tl.add("ui", line)
		if m := serialRE.FindStringSubmatch(strings.TrimSpace(line)); m != nil && !tailing[m[1]] {
			tailing[m[1]] = true
			tails.Add(1)
			go func(path string) {
				defer tails.Done()
				tailSerial(ctx, path, tl)
			}(m[1])
		}
	}
	werr := cmd.Wait()
	total := time.Since(start)
	tl.add("ui", "packer build ended")
	cancel()
	tails.Wait()
	if werr != nil {
		tail, _ := os.ReadFile(filepath.Join(dir, "build.log"))
		return fmt.Errorf("packer build: %w\n%s", werr, lastLines(string(tail), 40))
	}
	report(tl, total)
	return nil
}

func reportFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	t0 := time.Now()
	tl := &timeline{}
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		var secs float64
		var source string
		if _, err := fmt.Sscanf(line, "%f %s", &secs, &source); err != nil || len(line) < 17 {
			return fmt.Errorf("%s: not a timeline line: %q", path, line)
		}
		tl.events = append(tl.events, event{t0.Add(time.Duration(secs * float64(time.Second))), source, line[17:]})
	}
	if len(tl.events) == 0 {
		return fmt.Errorf("%s: empty", path)
	}
	report(tl, tl.events[len(tl.events)-1].at.Sub(tl.events[0].at))
	return nil
}

// tailSerial adds every line of the serial log at path to tl as it
// appears, until ctx ends (and then what is left).
func tailSerial(ctx context.Context, path string, tl *timeline) {
	var f *os.File
	var partial string
	buf := make([]byte, 64<<10)
	for {
		done := ctx.Err() != nil
		if f == nil {
			f, _ = os.Open(path)
		}
		if f != nil {
			for {
				n, _ := f.Read(buf)
				if n == 0 {
					break
				}
				partial += strings.ReplaceAll(string(buf[:n]), "\r", "")
				for {
					i := strings.IndexByte(partial, '\n')
					if i < 0 {
						break
					}
					tl.add("serial", partial[:i])
					partial = partial[i+1:]
				}
			}
		}
		if done {
			if f != nil {
				_ = f.Close()
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Lines that start and end the guest's time.
var (
	busyStarts = []string{"Starting QEMU (", "power: restarting", "power: shutting down"}
	busyEnds   = []string{"winrm: listening on ", "The VM powered off after", "powered the VM off after"}
	// After these the guest waits for winbake.
	readyLines = []string{"winrm: listening on ", "windows: ready"}
)

func matches(text string, marks []string) bool {
	for _, m := range marks {
		if strings.Contains(text, m) {
			return true
		}
	}
	return false
}

type interval struct {
	from, to event
}

func (i interval) d() time.Duration { return i.to.at.Sub(i.from.at) }

func report(tl *timeline, total time.Duration) {
	events := tl.events
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	if path := os.Getenv("BENCH_TIMELINE"); path != "" {
		var b strings.Builder
		for _, e := range events {
			fmt.Fprintf(&b, "%9.3f %-6s %s\n", e.at.Sub(events[0].at).Seconds(), e.source, e.text)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench-overhead: writing the timeline:", err)
		}
	}
	var boots, commands time.Duration
	var own, ran []interval
	busy := false
	for i := 0; i+1 < len(events); i++ {
		e := events[i]
		switch {
		case matches(e.text, busyStarts):
			busy = true
		case busy && matches(e.text, busyEnds):
			busy = false
		}
		iv := interval{e, events[i+1]}
		switch {
		case busy:
			boots += iv.d()
		case e.source == "serial" && !matches(e.text, readyLines):
			// The guest logged that it started something (a command
			// winbake sent, DISM, a power transition): until the next
			// line, it is the guest that works.
			commands += iv.d()
			ran = append(ran, iv)
		case iv.d() > 0:
			own = append(own, iv)
		}
	}
	guest := boots + commands
	winbake := total - guest

	fmt.Println()
	fmt.Println("the guest's time, as its serial console and the builder report it:")
	busy = false
	var since time.Time
	var what string
	for _, e := range events {
		switch {
		case !busy && matches(e.text, busyStarts):
			busy, since, what = true, e.at, short(e.text)
		case busy && matches(e.text, busyEnds):
			busy = false
			fmt.Printf("  %7.2f s  %s -> %s\n", e.at.Sub(since).Seconds(), what, short(e.text))
		}
	}

	fmt.Printf("  %7.2f s  running what winbake asked for: from a line the guest logged (a command, DISM, a power transition) to the next line\n", commands.Seconds())
	printLongest(ran)

	fmt.Println()
	fmt.Println("where winbake's own time goes: from a line winbake or Packer printed, or the guest's \"ready\", to the next line (0.25 s or more, longest first):")
	printLongest(own)
	fmt.Println()
	fmt.Printf("build-overhead: total %.1f s, guest %.1f s, winbake %.1f s (goal <= 10 s)\n",
		total.Seconds(), guest.Seconds(), winbake.Seconds())
}

// printLongest lists the intervals of 0.25 s or more, longest first, and
// sums the others.
func printLongest(ivs []interval) {
	sort.SliceStable(ivs, func(i, j int) bool { return ivs[i].d() > ivs[j].d() })
	var small time.Duration
	smallN := 0
	for _, iv := range ivs {
		if iv.d() < 250*time.Millisecond {
			small += iv.d()
			smallN++
			continue
		}
		fmt.Printf("  %7.2f s  %s -> %s\n", iv.d().Seconds(), short(iv.from.text), short(iv.to.text))
	}
	fmt.Printf("  %7.2f s  %d shorter intervals\n", small.Seconds(), smallN)
}

// short is an output line without Packer's prefix, cut to a readable size.
func short(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "==> ") {
		s = s[i+2:]
	}
	s = strings.TrimPrefix(s, "winbake-standin: ")
	if len(s) > 90 {
		s = s[:87] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func runQuiet(env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
