package compress

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// checkRoundTrip verifies that the image at out holds the test disk.
func checkRoundTrip(t *testing.T, format, out string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "source.raw")
	writeRawFixture(t, src)
	want := fixtureBytes()

	switch format {
	case "qcow2", "raw", "vhdx", "vmdk":
		info := qemuImgInfoT(t, out)
		if info.Format != format {
			t.Errorf("qemu-img info says %s is %q, want %q", out, info.Format, format)
		}
		if format == "qcow2" {
			qemuImg(t, "check", "-f", "qcow2", out)
		}
		if info.VirtualSize != fixtureSize {
			t.Errorf("virtual size of %s is %d, want %d", out, info.VirtualSize, fixtureSize)
		}
		qemuImg(t, "compare", "-f", "raw", "-F", format, src, out)
	case "dd.gz":
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip %s: %v", out, err)
		}
		assertSameBytes(t, got, want)
	case "dd.tgz":
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != TarMemberName || hdr.Typeflag != tar.TypeReg || hdr.Size != fixtureSize {
			t.Errorf("tar member = %q type %c size %d, want %q regular file of %d bytes",
				hdr.Name, hdr.Typeflag, hdr.Size, TarMemberName, fixtureSize)
		}
		got, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		assertSameBytes(t, got, want)
		if _, err := tr.Next(); err != io.EOF {
			t.Errorf("tar has more than one member (next: %v)", err)
		}
	case "dd.xz":
		got, err := exec.Command("xz", "--decompress", "--stdout", out).Output()
		if err != nil {
			t.Fatalf("xz -dc %s: %v", out, err)
		}
		assertSameBytes(t, got, want)
	default:
		t.Fatalf("checkRoundTrip: unknown format %q", format)
	}
}

func assertSameBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("decompressed %d bytes, want %d", len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("decompressed bytes differ from the source first at offset %d", i)
			}
		}
	}
}

func qemuImgInfoT(t *testing.T, path string) imageInfo {
	t.Helper()
	var info imageInfo
	if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", path)), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestPostProcessFormats converts a raw and a qcow2 disk to every format and
// checks the result round-trips, the artifact describes it, the input is
// untouched and nothing else was left behind.
func TestPostProcessFormats(t *testing.T) {
	requireTools(t, "qemu-img", "xz")
	for _, inFmt := range []string{"raw", "qcow2", "qcow2-zlib"} {
		for _, spec := range formats {
			t.Run(inFmt+"_to_"+spec.Name, func(t *testing.T) {
				t.Parallel()
				in := newInput(t, inFmt)
				inHash := fileSHA256(t, in)
				inStat, _ := os.Stat(in)

				p := configure(t, map[string]interface{}{"format": spec.Name})
				ui := newTestUI()
				a, keep, err := postProcess(context.Background(), p, ui, in)
				if err != nil {
					t.Fatalf("PostProcess: %v\nui:\n%s", err, ui.messages())
				}
				if !keep {
					t.Error("the default output lies in the input's directory, yet PostProcess let the input be discarded")
				}

				base := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
				wantOut := filepath.Join(filepath.Dir(in), base+"."+spec.Name)
				if strings.TrimSuffix(inFmt, "-zlib") == spec.Name {
					wantOut = filepath.Join(filepath.Dir(in), base+"-compressed."+spec.Name)
				}
				if got := a.Files(); len(got) != 1 || got[0] != wantOut {
					t.Fatalf("Files() = %v, want [%s]", got, wantOut)
				}
				if a.BuilderId() != BuilderId {
					t.Errorf("BuilderId() = %q", a.BuilderId())
				}
				if got := a.State("sha256"); got != fileSHA256(t, wantOut) {
					t.Errorf("State(sha256) = %v, file hashes to %s", got, fileSHA256(t, wantOut))
				}
				fi, err := os.Stat(wantOut)
				if err != nil {
					t.Fatal(err)
				}
				if got := a.State("size"); got != fi.Size() {
					t.Errorf("State(size) = %v, file has %d bytes", got, fi.Size())
				}
				if got := a.State("format"); got != spec.Name {
					t.Errorf("State(format) = %v", got)
				}
				if s := a.String(); !strings.Contains(s, wantOut) || !strings.Contains(s, a.SHA256) || !strings.Contains(s, spec.Name) {
					t.Errorf("String() = %q, want format, path and sha256", s)
				}

				checkRoundTrip(t, spec.Name, wantOut)

				if got := fileSHA256(t, in); got != inHash {
					t.Error("the input disk image changed")
				}
				if fi, _ := os.Stat(in); !fi.ModTime().Equal(inStat.ModTime()) {
					t.Error("the input disk image's modification time changed")
				}
				want := []string{filepath.Base(in), filepath.Base(wantOut)}
				slices.Sort(want)
				if got := dirNames(t, filepath.Dir(in)); !slices.Equal(got, want) {
					t.Errorf("directory holds %v, want %v", got, want)
				}
			})
		}
	}
}

// TestPostProcessOptions covers the qcow2 compression choices and the
// compression levels.
func TestPostProcessOptions(t *testing.T) {
	requireTools(t, "qemu-img", "xz")
	cases := []struct {
		name string
		cfg  map[string]interface{}
		// compression type qemu-img info reports for qcow2 outputs.
		qcow2Type string
		say       string
	}{
		{name: "qcow2_default_zstd", cfg: map[string]interface{}{"format": "qcow2"}, qcow2Type: "zstd"},
		{name: "qcow2_zlib", cfg: map[string]interface{}{"format": "qcow2", "qcow2_compression": "zlib"}, qcow2Type: "zlib"},
		{name: "qcow2_none", cfg: map[string]interface{}{"format": "qcow2", "qcow2_compression": "none"}, qcow2Type: "zlib"},
		{name: "gz_level1", cfg: map[string]interface{}{"format": "dd.gz", "compression_level": 1}, say: "gzip level 1"},
		{name: "tgz_level9", cfg: map[string]interface{}{"format": "dd.tgz", "compression_level": 9}, say: "gzip level 9"},
		{name: "xz_level0", cfg: map[string]interface{}{"format": "dd.xz", "compression_level": 0}, say: "xz -0"},
		{name: "xz_default", cfg: map[string]interface{}{"format": "dd.xz"}, say: "xz -6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := newInput(t, "raw")
			out := filepath.Join(t.TempDir(), "sub", "dir", "image.out")
			tc.cfg["output"] = out
			p := configure(t, tc.cfg)
			ui := newTestUI()
			a, _, err := postProcess(context.Background(), p, ui, in)
			if err != nil {
				t.Fatalf("PostProcess: %v", err)
			}
			if a.Path != out {
				t.Fatalf("Path = %s, want %s", a.Path, out)
			}
			format := tc.cfg["format"].(string)
			checkRoundTrip(t, format, out)
			if tc.say != "" && !strings.Contains(ui.messages(), tc.say) {
				t.Errorf("ui did not say %q:\n%s", tc.say, ui.messages())
			}
			if format != "qcow2" {
				return
			}
			var info struct {
				FormatSpecific struct {
					Data struct {
						CompressionType string `json:"compression-type"`
					} `json:"data"`
				} `json:"format-specific"`
			}
			if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", out)), &info); err != nil {
				t.Fatal(err)
			}
			if got := info.FormatSpecific.Data.CompressionType; got != tc.qcow2Type {
				t.Errorf("compression-type = %q, want %q", got, tc.qcow2Type)
			}
			// The text region compresses well: compare with a plain qcow2.
			ref := filepath.Join(t.TempDir(), "plain.qcow2")
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", in, ref)
			refInfo, err := os.Stat(ref)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cfg["qcow2_compression"] == "none" {
				if a.Size < refInfo.Size()*9/10 {
					t.Errorf("uncompressed qcow2 is %d bytes, a plain qcow2 %d", a.Size, refInfo.Size())
				}
			} else if a.Size > refInfo.Size()*8/10 {
				t.Errorf("compressed qcow2 is %d bytes, a plain qcow2 %d", a.Size, refInfo.Size())
			}
		})
	}
}

// TestPostProcessCancel cancels the context while each kind of work is under
// way and checks that nothing is left behind but the untouched input.
func TestPostProcessCancel(t *testing.T) {
	requireTools(t, "qemu-img", "xz")
	cases := []struct {
		name, inFmt, format string
		// cancelOn is "read" (first read of the raw bytes) or the start of
		// the ui message on which the context is cancelled.
		cancelOn string
		big      bool
		// qcow2Compression, when set: zlib clusters are written by qemu-img.
		qcow2Compression string
	}{
		{name: "gz_reading", inFmt: "raw", format: "dd.gz", cancelOn: "read"},
		{name: "tgz_reading", inFmt: "qcow2", format: "dd.tgz", cancelOn: "read"},
		{name: "xz_reading", inFmt: "raw", format: "dd.xz", cancelOn: "read"},
		{name: "xz_converting_to_raw", inFmt: "qcow2-zlib", format: "dd.xz", cancelOn: "qemu-img convert to raw: "},
		{name: "vmdk_writing", inFmt: "raw", format: "vmdk", cancelOn: "read", big: true},
		// qemu-img reports 10% while it still has most of the work to do.
		{name: "qcow2_converting", inFmt: "raw", format: "qcow2", cancelOn: "qemu-img convert: 10%", big: true, qcow2Compression: "zlib"},
		{name: "qcow2_writing", inFmt: "raw", format: "qcow2", cancelOn: "read", big: true},
		{name: "before_qemu_img", inFmt: "qcow2-zlib", format: "vhdx", cancelOn: "Converting"},
		{name: "vhdx_writing", inFmt: "raw", format: "vhdx", cancelOn: "read"},
		{name: "hashing", inFmt: "raw", format: "raw", cancelOn: "Computing SHA-256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := newInput(t, tc.inFmt)
			if tc.big {
				in = bigRandomRaw(t)
			}
			inHash := fileSHA256(t, in)
			before := dirNames(t, filepath.Dir(in))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ui := newTestUI()
			var once sync.Once
			if tc.cancelOn == "read" {
				ui.onRead = func() { once.Do(cancel) }
			} else {
				ui.onSay = func(msg string) {
					if strings.HasPrefix(msg, tc.cancelOn) {
						once.Do(cancel)
					}
				}
			}

			cfg := map[string]interface{}{"format": tc.format}
			if tc.qcow2Compression != "" {
				cfg["qcow2_compression"] = tc.qcow2Compression
			}
			p := configure(t, cfg)
			start := time.Now()
			a, _, err := postProcess(ctx, p, ui, in)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("PostProcess = %v, %v; want context.Canceled\nui:\n%s", a, err, ui.messages())
			}
			t.Logf("cancelled after %s; ui:\n%s", time.Since(start), ui.messages())
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("cancelled PostProcess took %s", d)
			}
			if got := dirNames(t, filepath.Dir(in)); !slices.Equal(got, before) {
				t.Errorf("after cancel the directory holds %v, want %v", got, before)
			}
			if fileSHA256(t, in) != inHash {
				t.Error("the input disk image changed")
			}
		})
	}
}

// bigRandomRaw writes a 64 MiB incompressible raw disk, slow enough to
// compress that a cancel lands while qemu-img runs.
func bigRandomRaw(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{7}), 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPostProcessOutput covers the output path rules.
func TestPostProcessOutput(t *testing.T) {
	requireTools(t, "qemu-img")

	t.Run("template", func(t *testing.T) {
		in := newInput(t, "raw")
		out := t.TempDir()
		p := configure(t, map[string]interface{}{
			"format":              "qcow2",
			"output":              out + "/{{.BuildName}}-{{.BuilderType}}-{{.InputName}}.{{.Ext}}",
			"packer_build_name":   "win2022",
			"packer_builder_type": "winbake-qemu",
		})
		a, _, err := postProcess(context.Background(), p, newTestUI(), in)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(out, "win2022-winbake-qemu-disk.qcow2"); a.Path != want {
			t.Errorf("Path = %s, want %s", a.Path, want)
		}
	})

	t.Run("relative", func(t *testing.T) {
		in := newInput(t, "raw")
		dir := t.TempDir()
		t.Chdir(dir)
		p := configure(t, map[string]interface{}{"format": "vhdx", "output": "images/win.vhdx"})
		a, _, err := postProcess(context.Background(), p, newTestUI(), in)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "images", "win.vhdx"); a.Path != want {
			t.Errorf("Path = %s, want %s", a.Path, want)
		}
	})

	t.Run("explicit_output_is_input", func(t *testing.T) {
		in := newInput(t, "qcow2")
		p := configure(t, map[string]interface{}{"format": "qcow2", "output": in})
		_, _, err := postProcess(context.Background(), p, newTestUI(), in)
		if err == nil || !strings.Contains(err.Error(), "is the input disk image") {
			t.Fatalf("err = %v, want an error naming the input", err)
		}
	})

	t.Run("exists_without_force", func(t *testing.T) {
		in := newInput(t, "raw")
		existing := filepath.Join(filepath.Dir(in), "disk.vmdk")
		if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := configure(t, map[string]interface{}{"format": "vmdk"})
		_, _, err := postProcess(context.Background(), p, newTestUI(), in)
		if err == nil || !strings.Contains(err.Error(), "-force") {
			t.Fatalf("err = %v, want an error mentioning -force", err)
		}
		if b, _ := os.ReadFile(existing); string(b) != "keep me" {
			t.Error("the existing output was changed")
		}
	})

	t.Run("exists_with_force", func(t *testing.T) {
		in := newInput(t, "raw")
		existing := filepath.Join(filepath.Dir(in), "disk.vmdk")
		if err := os.WriteFile(existing, []byte("replace me"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := configure(t, map[string]interface{}{"format": "vmdk", "packer_force": true})
		a, _, err := postProcess(context.Background(), p, newTestUI(), in)
		if err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, "vmdk", a.Path)
	})

	t.Run("output in the input's directory keeps the input, forced", func(t *testing.T) {
		in := newInput(t, "raw")
		p := configure(t, map[string]interface{}{"format": "qcow2", "output": filepath.Join(filepath.Dir(in), "sub", "out.qcow2")})
		ui := newTestUI()
		_, keep, force, err := p.PostProcess(context.Background(), ui, inputArtifact(in))
		if err != nil {
			t.Fatal(err)
		}
		if !keep || !force {
			t.Errorf("PostProcess returned keep %v, force %v; want both true so discarding the input cannot delete the output", keep, force)
		}
		if !strings.Contains(ui.messages(), "Keeping the input artifact") {
			t.Errorf("the UI does not say why the input is kept:\n%s", ui.messages())
		}
	})

	t.Run("output elsewhere follows keep_input_artifact", func(t *testing.T) {
		in := newInput(t, "raw")
		p := configure(t, map[string]interface{}{"format": "qcow2", "output": filepath.Join(t.TempDir(), "out.qcow2")})
		_, keep, force, err := p.PostProcess(context.Background(), newTestUI(), inputArtifact(in))
		if err != nil {
			t.Fatal(err)
		}
		if keep || force {
			t.Errorf("PostProcess returned keep %v, force %v; want the default keep_input_artifact = false, not forced", keep, force)
		}
	})

	t.Run("a winbake golden image is kept by default", func(t *testing.T) {
		in := newInput(t, "raw")
		p := configure(t, map[string]interface{}{"format": "qcow2", "output": filepath.Join(t.TempDir(), "out.qcow2")})
		golden := &packersdk.MockArtifact{BuilderIdValue: image.QemuBuilderID, FilesValue: []string{in}}
		_, keep, force, err := p.PostProcess(context.Background(), newTestUI(), golden)
		if err != nil {
			t.Fatal(err)
		}
		if !keep || force {
			t.Errorf("PostProcess returned keep %v, force %v; want the golden image kept, and keep_input_artifact = false still honoured", keep, force)
		}
	})

	t.Run("keep_input_artifact", func(t *testing.T) {
		in := newInput(t, "raw")
		p := configure(t, map[string]interface{}{"format": "raw", "keep_input_artifact": true})
		_, keep, err := postProcess(context.Background(), p, newTestUI(), in)
		if err != nil {
			t.Fatal(err)
		}
		if !keep {
			t.Error("keep_input_artifact = true, PostProcess said do not keep")
		}
	})
}

// TestFindDiskImage covers picking the disk image among the artifact files.
func TestFindDiskImage(t *testing.T) {
	requireTools(t, "qemu-img")
	qcow := newInput(t, "qcow2")
	dir := filepath.Dir(qcow)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw := filepath.Join(dir, "disk.raw")
	writeRawFixture(t, raw)
	vars := write("efivars.fd", strings.Repeat("\x00", 4096))
	notes := write("build.log", "built\n")
	noext := write("packer-win", strings.Repeat("\x00", 4096))
	vhdx := filepath.Join(dir, "disk.vhdx")
	qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", raw, vhdx)

	cases := []struct {
		name    string
		files   []string
		want    string
		wantErr string
	}{
		{name: "single file of any format", files: []string{notes}, want: notes},
		{name: "the one qcow2 among raw files", files: []string{vars, qcow, notes}, want: qcow},
		{name: "directories are skipped", files: []string{dir, qcow}, want: qcow},
		{name: "the one *.raw among raw files", files: []string{vars, raw, notes}, want: raw},
		{name: "two images", files: []string{qcow, vhdx}, wantErr: "several disk images"},
		{name: "no recognisable image", files: []string{vars, notes, noext}, wantErr: "cannot tell which file"},
		{name: "nothing", files: nil, wantErr: "no regular file"},
		{name: "missing file", files: []string{filepath.Join(dir, "gone.qcow2")}, wantErr: "gone.qcow2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, info, err := findDiskImage(context.Background(), tc.files)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if len(tc.files) > 1 {
					for _, f := range tc.files {
						if !strings.Contains(err.Error(), f) {
							t.Errorf("error does not list %s: %v", f, err)
						}
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("picked %s, want %s", got, tc.want)
			}
			if info.Format == "" {
				t.Error("no format reported")
			}
		})
	}
}

func TestNoInput(t *testing.T) {
	p := configure(t, map[string]interface{}{"format": "raw"})
	if _, _, _, err := p.PostProcess(context.Background(), newTestUI(), nil); err == nil {
		t.Fatal("PostProcess(nil artifact) succeeded")
	}
}

func TestMissingCommand(t *testing.T) {
	for _, tc := range []struct {
		format string
		cmd    *string
		want   string
	}{
		{"qcow2", &qemuImgCommand, "qemu-utils"},
		{"dd.xz", &xzCommand, "xz-utils"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			old := *tc.cmd
			*tc.cmd = "winbake-no-such-command"
			defer func() { *tc.cmd = old }()
			p := configure(t, map[string]interface{}{"format": tc.format})
			_, _, err := postProcess(context.Background(), p, newTestUI(), "/nonexistent")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s", err, tc.want)
			}
		})
	}
}

func TestPercentReporter(t *testing.T) {
	var got []int
	r := percentReporter(func(p int) { got = append(got, p) })
	for _, line := range []string{"(0.00/100%)", "(9.99/100%)", "(10.00/100%)", "(10.50/100%)",
		"(35.01/100%)", "noise", "(99.99/100%)", "(100.00/100%)"} {
		r(line)
	}
	if want := []int{10, 30, 90, 100}; !slices.Equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
}

// formats writes every format from one input: one artifact listing them in
// order, each file a faithful copy, the input's manifest handed on.
func TestSeveralFormats(t *testing.T) {
	requireTools(t, "qemu-img")
	in := newInput(t, "qcow2")
	manifest := filepath.Join(filepath.Dir(in), "win.json")
	if err := os.WriteFile(manifest, []byte(`{"disk":"win.qcow2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	p := configure(t, map[string]interface{}{"formats": []string{"qcow2", "dd.gz"}, "output": filepath.Join(outDir, "win.{{.Ext}}")})
	a, _, _, err := p.PostProcess(context.Background(), newTestUI(), inputArtifact(in, manifest))
	if err != nil {
		t.Fatal(err)
	}
	outputs, err := image.CompressedOutputs(a)
	if err != nil {
		t.Fatal(err)
	}
	if image.Formats(outputs) != "qcow2, dd.gz" || len(a.Files()) != 2 {
		t.Fatalf("outputs %s, files %v; want qcow2, dd.gz", image.Formats(outputs), a.Files())
	}
	if got := a.State(image.StateManifest); got != manifest {
		t.Errorf("manifest state %v, want %s", got, manifest)
	}
	if outputs[0].DiskFormat != "qcow2" || outputs[1].MaasFiletype != "ddgz" {
		t.Errorf("outputs %+v", outputs)
	}
	for _, o := range outputs {
		if got := fileSHA256(t, o.Path); got != o.SHA256 {
			t.Errorf("%s: recorded sha256 %s, file hashes to %s", o.Format, o.SHA256, got)
		}
	}
	checkRoundTrip(t, "qcow2", outputs[0].Path)
}

// A failure in a later format removes the files written before it and the
// folder made for them: nothing half-made stays.
func TestSeveralFormatsFailureLeavesNothing(t *testing.T) {
	requireTools(t, "qemu-img")
	in := newInput(t, "raw")
	outDir := filepath.Join(t.TempDir(), "new", "clouds")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ui := newTestUI()
	var once sync.Once
	ui.onRead = func() { once.Do(cancel) } // the dd.gz writer reports progress; qcow2 goes through qemu-img
	p := configure(t, map[string]interface{}{"formats": []string{"qcow2", "dd.gz"}, "output": filepath.Join(outDir, "win.{{.Ext}}")})
	if _, _, _, err := p.PostProcess(ctx, ui, inputArtifact(in)); !errors.Is(err, context.Canceled) {
		t.Fatalf("PostProcess: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Dir(outDir)); !os.IsNotExist(err) {
		t.Errorf("the output folders stay after the failure: %v", err)
	}
}
