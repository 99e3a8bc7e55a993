//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// compressFormats are all formats of winbake-compress, with the command
// that turns each back into raw disk bytes on stdout (qemu formats are
// converted by qemu-img instead).
var compressFormats = map[string][]string{
	"qcow2":  nil,
	"raw":    nil,
	"vhdx":   nil,
	"vmdk":   nil,
	"dd.gz":  {"gzip", "-dc"},
	"dd.tgz": {"tar", "-xOzf"},
	"dd.xz":  {"xz", "-dc"},
}

// compressAllTemplate hands one file artifact to one winbake-compress
// post-processor chain per format.
func compressAllTemplate() string {
	var b strings.Builder
	b.WriteString(`
variable "input_disk" { type = string }
variable "output_dir" { type = string }

source "file" "disk" {
  source = var.input_disk
  target = "${var.output_dir}/golden/disk.raw"
}

build {
  sources = ["source.file.disk"]
`)
	for _, f := range []string{"qcow2", "raw", "vhdx", "vmdk", "dd.gz", "dd.tgz", "dd.xz"} {
		fmt.Fprintf(&b, `
  post-processors {
    post-processor "winbake-compress" {
      format              = %q
      output              = "${var.output_dir}/images/windows.%s"
      keep_input_artifact = true
    }
    post-processor "manifest" {
      output = "${var.output_dir}/manifest-%s.json"
    }
  }
`, f, f, f)
	}
	b.WriteString("}\n")
	return b.String()
}

// writeSparseRawDisk writes a 96 MiB raw disk with holes, random and text
// data off chunk boundaries, and data in the last sector.
func writeSparseRawDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	const size = 96<<20 + 512
	for off, b := range map[int64][]byte{
		0:             random(4096),
		5<<20 + 333:   random(2 << 20),
		9 << 20:       []byte(strings.Repeat("C:\\Windows\\System32 winbake e2e\r\n", 60000)),
		80<<20 + 4096: random(300000),
		size - 512:    random(512),
	} {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readerSHA(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func compressFileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readerSHA(t, f)
}

// TestCompressEveryFormat runs real Packer from a file artifact through
// winbake-compress to every format and checks each image gives back the
// disk's raw bytes, passes qemu-img check, and is what the manifest lists.
func TestCompressEveryFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	input := filepath.Join(dir, "input.raw")
	writeSparseRawDisk(t, input)
	wantSum := compressFileSHA(t, input)
	out := filepath.Join(dir, "out")

	tmpl := filepath.Join(dir, "compress-all.pkr.hcl")
	if err := os.WriteFile(tmpl, []byte(compressAllTemplate()), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := installed.run(dir, "build", "-var", "input_disk="+input, "-var", "output_dir="+out, tmpl)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}

	for format, decompress := range compressFormats {
		t.Run(format, func(t *testing.T) {
			image := filepath.Join(out, "images", "windows."+format)
			sum := compressFileSHA(t, image)
			if !strings.Contains(log, sum) {
				t.Errorf("the build output does not show the SHA-256 %s of %s", sum, image)
			}

			var got string
			if decompress == nil {
				if format != "raw" {
					if o, err := exec.Command("qemu-img", "check", "-f", format, image).CombinedOutput(); err != nil {
						t.Errorf("qemu-img check %s: %v\n%s", image, err, o)
					}
				}
				back := filepath.Join(t.TempDir(), "back.raw")
				if o, err := exec.Command("qemu-img", "convert", "-f", format, "-O", "raw", image, back).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img convert %s: %v\n%s", image, err, o)
				}
				got = compressFileSHA(t, back)
			} else {
				cmd := exec.Command(decompress[0], append(decompress[1:], image)...)
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				got = readerSHA(t, stdout)
				if err := cmd.Wait(); err != nil {
					t.Fatalf("%s %s: %v", strings.Join(decompress, " "), image, err)
				}
			}
			if got != wantSum {
				t.Errorf("%s holds raw bytes with sha256 %s, the input disk has %s", image, got, wantSum)
			}

			var manifest struct {
				Builds []struct {
					Files []struct{ Name string } `json:"files"`
				} `json:"builds"`
			}
			m, err := os.ReadFile(filepath.Join(out, "manifest-"+format+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(m, &manifest); err != nil {
				t.Fatal(err)
			}
			if len(manifest.Builds) != 1 || len(manifest.Builds[0].Files) != 1 ||
				!strings.HasSuffix(manifest.Builds[0].Files[0].Name, "windows."+format) {
				t.Errorf("manifest does not list windows.%s as the only file:\n%s", format, m)
			}
		})
	}
	// Nothing but the seven images: no partial or temporary files.
	ents, err := os.ReadDir(filepath.Join(out, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(compressFormats) {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("images directory holds %v, want only the %d images", names, len(compressFormats))
	}
}
