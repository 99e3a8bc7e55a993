package updates

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/agent"

	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// ManifestPath is where the manifest is left in the image.
const ManifestPath = `C:\ProgramData\winbake\updates.json`

// Manifest is the content of ManifestPath; post-processors read it.
type Manifest struct {
	// Version of this format.
	Version int `json:"version"`
	// Finished is when the provisioner finished (UTC).
	Finished time.Time `json:"finished"`
	// Reboots the provisioner started, and reboots seen in all (with the
	// ones Windows did by itself).
	Reboots         int `json:"reboots"`
	RebootsObserved int `json:"reboots_observed"`
	// DeferredToFirstBoot is true when failed packages stay in the image
	// for a retry at first boot.
	DeferredToFirstBoot bool              `json:"deferred_to_first_boot"`
	Packages            []ManifestPackage `json:"packages"`
}

// ManifestPackage is one package's record.
type ManifestPackage struct {
	File   string `json:"file"`
	KB     string `json:"kb,omitempty"`
	Kind   Kind   `json:"kind"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	// Result: installed, already_installed, not_applicable, failed,
	// deferred (failed, retried at first boot), pending.
	Result string `json:"result"`
	// Outcome and ExitCode are the last install's (winbake-agent's
	// classification and the DISM exit code).
	Outcome     agent.Outcome `json:"outcome,omitempty"`
	ExitCode    uint32        `json:"exit_code"`
	ExitCodeHex string        `json:"exit_code_hex"`
	Attempts    int           `json:"attempts"`
	// Reboots is how many reboots the package took to finish.
	Reboots int    `json:"reboots"`
	Message string `json:"message,omitempty"`
}

func (r *installRun) manifest() Manifest {
	m := Manifest{Version: 1, Finished: time.Now().UTC(), Reboots: r.reboots, RebootsObserved: r.observed, DeferredToFirstBoot: len(r.failed()) > 0 && r.cfg.DeferFailed, Packages: []ManifestPackage{}}
	for _, s := range r.states {
		// A checkpoint that went in with its target has the target's
		// outcome: it was added in the target's DISM call.
		src, message := s, s.message
		if t := s.withTarget; t != nil {
			src, message = t, "added with "+t.pkg.Name+" (DISM takes checkpoints from the target's folder)"
		}
		res := src.result
		if res == "" {
			res = resultPending
		}
		attempts := src.attempts
		if src.result != resultFailed && src.result != resultDeferred && src.result != "" {
			attempts++
		}
		m.Packages = append(m.Packages, ManifestPackage{
			File: s.pkg.Name, KB: s.pkg.KB, Kind: s.pkg.Kind, SHA256: s.pkg.SHA256, Bytes: s.pkg.Size,
			Result: res, Outcome: src.outcome, ExitCode: src.exitCode, ExitCodeHex: agent.HexCode(src.exitCode),
			Attempts: attempts, Reboots: src.rebootsAfter, Message: message,
		})
	}
	return m
}

func (r *installRun) writeManifest(ctx context.Context) error {
	b, err := json.MarshalIndent(r.manifest(), "", "  ")
	if err != nil {
		return err
	}
	if err := r.g.comm.Upload(ManifestPath, bytes.NewReader(append(b, '\r', '\n')), nil); err != nil {
		return fmt.Errorf("writing the manifest %s: %w", ManifestPath, err)
	}
	return nil
}

// summary prints the table of packages.
func (r *installRun) summary() {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tKB\tKIND\tRESULT\tEXIT CODE\tATTEMPTS\tREBOOTS")
	for _, p := range r.manifest().Packages {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", p.File, dash(p.KB), p.Kind, p.Result, p.ExitCodeHex, p.Attempts, p.Reboots)
	}
	tw.Flush()
	r.ui.Say(fmt.Sprintf("winbake-updates summary (%d reboot(s) started, %d seen; manifest %s):\n%s", r.reboots, r.observed, ManifestPath, strings.TrimRight(b.String(), "\n")))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// uploadFile copies a package through the communicator (delivery = "winrm").
func uploadFile(comm packersdk.Communicator, dest string, pk *Package) error {
	f, err := os.Open(pk.LocalPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := comm.Upload(dest, f, &st); err != nil {
		return fmt.Errorf("uploading %s to %s over WinRM: %w", pk.Name, dest, err)
	}
	return nil
}

// download fetches a remote package into Packer's cache once; a cached file
// with the right checksum is reused.
func download(ctx context.Context, ui packersdk.Ui, url, checksum string) (string, error) {
	want := strings.ToLower(strings.TrimPrefix(checksum, "sha256:"))
	name := filepath.Base(strings.SplitN(url, "?", 2)[0])
	dir, err := packersdk.CachePath("winbake-updates", want)
	if err != nil {
		return "", err
	}
	dest := filepath.Join(dir, name)
	if got, err := fileSHA256(dest); err == nil && got == want {
		ui.Message(fmt.Sprintf("Using the cached %s", dest))
		return dest, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: HTTP %s", url, resp.Status)
	}
	tmp, err := os.CreateTemp(dir, name+".*.part")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	body := progress.Track(ui, name, resp.ContentLength, resp.Body)
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	body.Close()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%s has SHA-256 %s, the checksum says %s", url, got, want)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", err
	}
	return dest, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
