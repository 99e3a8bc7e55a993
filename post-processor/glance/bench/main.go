// Command bench compares winbake-glance's upload with `curl -T` to the same
// glance-api, in the same run: a 4 GiB raw image is uploaded alternately by
// curl (PUT /v2/images/{id}/file with a token) and by the winbake-glance
// post-processor (log-in, create, stream with MD5/SHA-512, verify), each
// twice; the best time of each is compared. curl's time is the PUT alone;
// the post-processor's is its upload phase (first byte to Glance's 204, as
// it reports it: "Sent N MiB in S s"), and its whole run (log-in, create,
// qemu-img info, upload, verify) is compared too. The post-processor runs in
// a child process whose peak RSS is reported. Run it with `make bench-glance`.
//
// It starts its own Keystone and glance-api with scripts/openstack-lab.sh
// (ports 15100 and 19392, image_size_cap 8 GiB) in BENCH_DIR (default: a new
// directory under the system temp dir), stops them and removes everything
// at the end. Needs about 9 GiB free there. BENCH_GIB changes the size.
//
// Last line: "glance upload rate vs curl: N.NN (peak RSS M MiB)".
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/post-processor/glance"
)

const gib = int64(1) << 30

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-child" {
		if err := child(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bench-glance child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-glance:", err)
		os.Exit(1)
	}
}

// child publishes file with winbake-glance, as the plugin process would.
func child(cloudsFile, file string) error {
	log.SetOutput(io.Discard)
	var p glance.PostProcessor
	if err := p.Configure(map[string]interface{}{
		"cloud": "winbake-test", "clouds_file": cloudsFile,
		"image_name": "bench-glance winbake", "visibility": "private",
	}); err != nil {
		return err
	}
	var said strings.Builder
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &said, ErrorWriter: os.Stderr, PB: &packersdk.NoopProgressTracker{}}
	a, _, _, err := p.PostProcess(context.Background(), ui, &image.Compressed{Outputs: []image.Output{{Path: file, Format: "raw", DiskFormat: "raw"}}})
	if err != nil {
		return err
	}
	// The upload phase as the post-processor reports it: "Sent N MiB in S s".
	var sent float64
	for _, line := range strings.Split(said.String(), "\n") {
		if _, after, ok := strings.Cut(line, "Sent "); ok {
			var mib int64
			if _, err := fmt.Sscanf(after, "%d MiB in %f s", &mib, &sent); err != nil {
				return fmt.Errorf("reading %q: %w", line, err)
			}
		}
	}
	if sent == 0 {
		return fmt.Errorf("the post-processor did not report its upload time:\n%s", said.String())
	}
	fmt.Println(a.Id(), sent)
	return nil
}

func run() error {
	size := 4 * gib
	if v := os.Getenv("BENCH_GIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("BENCH_GIB=%q: want a positive whole number", v)
		}
		size = int64(n) * gib
	}
	dir := os.Getenv("BENCH_DIR")
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-glance-")
		if err != nil {
			return err
		}
		dir = d
		defer os.RemoveAll(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := 2*size + gib; free < need {
		return fmt.Errorf("%s has %.1f GiB free; the benchmark needs %.1f GiB (the image and Glance's copy)", dir, float64(free)/float64(gib), float64(need)/float64(gib))
	}
	fmt.Printf("disk: %.1f GiB free in %s\n", float64(free)/float64(gib), dir)

	root, err := repoRoot()
	if err != nil {
		return err
	}
	labDir := filepath.Join(dir, "lab")
	script := filepath.Join(root, "scripts", "openstack-lab.sh")
	labEnv := append(os.Environ(), "OPENSTACK_LAB_KEYSTONE_PORT=15100", "OPENSTACK_LAB_GLANCE_PORT=19392",
		fmt.Sprintf("OPENSTACK_LAB_IMAGE_SIZE_CAP=%d", 2*size))
	start := exec.Command("bash", script, "start", labDir)
	start.Env, start.Stdout, start.Stderr = labEnv, os.Stdout, os.Stderr
	if err := start.Run(); err != nil {
		return fmt.Errorf("starting Keystone and glance-api: %w", err)
	}
	stopLab := func() {
		stop := exec.Command("bash", script, "stop", labDir)
		stop.Env = labEnv
		if out, err := stop.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the lab: %v\n%s", err, out)
		}
	}
	defer stopLab()
	cloudsFile := filepath.Join(labDir, "clouds.yaml")

	file := filepath.Join(dir, "image.raw")
	t0 := time.Now()
	if err := writeRandom(file, size); err != nil {
		return err
	}
	fmt.Printf("image: %d MiB of random data written in %s\n", size>>20, time.Since(t0).Round(time.Millisecond))

	client, token, err := login(cloudsFile)
	if err != nil {
		return err
	}
	var curlBest, pluginBest, totalBest time.Duration
	var peakKiB int64
	for round := 1; round <= 2; round++ {
		d, err := curlUpload(client, token, file, size)
		if err != nil {
			return err
		}
		fmt.Printf("round %d: curl -T       %6.1f s  %6.1f MiB/s\n", round, d.Seconds(), float64(size>>20)/d.Seconds())
		if curlBest == 0 || d < curlBest {
			curlBest = d
		}
		total, d, rss, err := pluginUpload(client, cloudsFile, file)
		if err != nil {
			return err
		}
		fmt.Printf("round %d: winbake-glance %6.1f s  %6.1f MiB/s  peak RSS %d MiB (whole post-processor with log-in, create, verify: %.1f s)\n",
			round, d.Seconds(), float64(size>>20)/d.Seconds(), rss>>10, total.Seconds())
		if pluginBest == 0 || d < pluginBest {
			pluginBest = d
		}
		if totalBest == 0 || total < totalBest {
			totalBest = total
		}
		peakKiB = max(peakKiB, rss)
	}
	os.Remove(file)
	stopLab()
	fmt.Printf("whole post-processor vs curl -T: %.2f\n", curlBest.Seconds()/totalBest.Seconds())
	fmt.Printf("glance upload rate vs curl: %.2f (peak RSS %d MiB)\n", curlBest.Seconds()/pluginBest.Seconds(), (peakKiB+1023)>>10)
	return nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	buf := make([]byte, 8<<20)
	for written := int64(0); written < size; written += int64(len(buf)) {
		_, _ = rng.Read(buf)
		if _, err := f.Write(buf[:min(int64(len(buf)), size-written)]); err != nil {
			return err
		}
	}
	return f.Close()
}

func login(cloudsFile string) (*gophercloud.ServiceClient, string, error) {
	ctx := context.Background()
	ao, eo, tlsConfig, err := clouds.Parse(clouds.WithCloudName("winbake-test"), clouds.WithLocations(cloudsFile))
	if err != nil {
		return nil, "", err
	}
	pc, err := config.NewProviderClient(ctx, ao, config.WithTLSConfig(tlsConfig))
	if err != nil {
		return nil, "", err
	}
	c, err := openstack.NewImageV2(pc, eo)
	if err != nil {
		return nil, "", err
	}
	return c, pc.Token(), nil
}

// curlUpload creates an image and times `curl -T` of the file into it.
func curlUpload(client *gophercloud.ServiceClient, token, file string, size int64) (time.Duration, error) {
	ctx := context.Background()
	vis := images.ImageVisibilityPrivate
	img, err := images.Create(ctx, client, images.CreateOpts{Name: "bench-glance curl", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &vis}).Extract()
	if err != nil {
		return 0, err
	}
	defer images.Delete(ctx, client, img.ID)
	cmd := exec.Command("curl", "-sS", "--fail", "-T", file, "-H", "Content-Type: application/octet-stream",
		"-K", "-", client.ServiceURL("images", img.ID, "file"))
	// The token goes in on stdin, not on the command line.
	cmd.Stdin = strings.NewReader(fmt.Sprintf("header = \"X-Auth-Token: %s\"\n", token))
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("curl -T: %w", err)
	}
	d := time.Since(start)
	got, err := images.Get(ctx, client, img.ID).Extract()
	if err != nil {
		return 0, err
	}
	if got.Status != images.ImageStatusActive || got.SizeBytes != size {
		return 0, fmt.Errorf("curl upload: image %s is %s with %d bytes", img.ID, got.Status, got.SizeBytes)
	}
	return d, nil
}

// pluginUpload runs winbake-glance in a child process and returns the wall
// time and the child's peak RSS in KiB.
func pluginUpload(client *gophercloud.ServiceClient, cloudsFile, file string) (total, upload time.Duration, rssKiB int64, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.Command(self, "-child", cloudsFile, file)
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("winbake-glance: %w", err)
	}
	var id string
	var sent float64
	if _, err := fmt.Sscan(string(out), &id, &sent); err != nil {
		return 0, 0, 0, fmt.Errorf("child output %q: %w", out, err)
	}
	if err := images.Delete(context.Background(), client, id).ExtractErr(); err != nil {
		return 0, 0, 0, fmt.Errorf("deleting image %s: %w", id, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return d, time.Duration(sent * float64(time.Second)), ru.Maxrss, nil
}
