// Package compress implements the winbake-compress post-processor: it turns
// the disk image of a build into a distributable image file (qcow2, raw,
// vhdx, vmdk, or a gzip/xz-compressed raw disk for MAAS).
package compress

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/diskcheck"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/progress"
)

// BuilderId identifies artifacts made by this post-processor.
const BuilderId = image.CompressBuilderID

// TarMemberName is the name of the raw disk inside a dd.tgz archive.
const TarMemberName = "root-dd"

// PostProcessor is the winbake-compress post-processor.
type PostProcessor struct {
	config Config
}

var _ packersdk.PostProcessor = new(PostProcessor)

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error {
	return p.config.Prepare(raws...)
}

// PostProcess writes the input artifact's disk image in the configured
// formats. A winbake image (the golden image a rebuild starts from, or
// winbake-sysprep's generalized copy whose manifest and firmware state the
// artifact hands on to winbake-verify and winbake-glance) is kept unless
// the user sets keep_input_artifact = false.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	keep := p.config.KeepInputArtifact || input != nil && image.IsWinbakeImage(input)
	a, err := p.run(ctx, ui, input)
	if err != nil {
		return nil, keep, false, err
	}
	if dir, inside := insideInputDir(a.Files(), input.Files()); inside {
		// Builders may discard an artifact by deleting its whole directory
		// (packer-plugin-qemu does), which would take the new image with it.
		ui.Say(fmt.Sprintf("Keeping the input artifact: the output lies in its directory %s, which discarding it could delete", dir))
		return a, true, true, nil
	}
	return a, keep, false, nil
}

// insideInputDir reports whether one of outs lies in (or below) the
// directory of one of the input artifact's files, and which directory.
func insideInputDir(outs, inputs []string) (string, bool) {
	for _, out := range outs {
		if dir, inside := insideDirOf(out, inputs); inside {
			return dir, true
		}
	}
	return "", false
}

func insideDirOf(out string, inputs []string) (string, bool) {
	outDir, err := filepath.Abs(filepath.Dir(out))
	if err != nil {
		return "", false
	}
	for _, f := range inputs {
		dir, err := filepath.Abs(filepath.Dir(f))
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(dir, outDir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return dir, true
		}
	}
	return "", false
}

func (p *PostProcessor) run(ctx context.Context, ui packersdk.Ui, input packersdk.Artifact) (*Artifact, error) {
	c := &p.config
	if len(c.specs) == 0 {
		return nil, errors.New("winbake-compress was not configured")
	}
	if input == nil {
		return nil, errors.New("no input artifact to compress")
	}

	if _, err := exec.LookPath(qemuImgCommand); err != nil {
		return nil, fmt.Errorf("winbake-compress needs %s (Debian/Ubuntu package qemu-utils) on PATH: %w", qemuImgCommand, err)
	}
	if c.writes("dd.xz") {
		if _, err := exec.LookPath(xzCommand); err != nil {
			return nil, fmt.Errorf("format dd.xz needs %s (Debian/Ubuntu package xz-utils) on PATH: %w", xzCommand, err)
		}
	}

	src, info, err := findDiskImage(ctx, input.Files())
	if err != nil {
		return nil, err
	}
	ui.Say(fmt.Sprintf("Input disk image: %s (%s, %s virtual)", src, info.Format, humanBytes(info.VirtualSize)))
	if err := checkInput(ctx, ui, src, manifestOf(input)); err != nil {
		return nil, err
	}

	// Plan every output first, so a name clash stops the run before any
	// file is written.
	outs := make([]string, len(c.specs))
	for i, spec := range c.specs {
		if outs[i], err = p.outputPath(src, spec); err != nil {
			return nil, err
		}
		for _, prev := range outs[:i] {
			if prev == outs[i] {
				return nil, fmt.Errorf("output: formats %s and %s would both be written to %s; put {{.Ext}} in output", c.specs[i-1].Name, spec.Name, prev)
			}
		}
	}

	a := &Artifact{Manifest: manifestOf(input)}
	var createdDirs []string
	fail := func(err error) (*Artifact, error) {
		// Nothing half-made: the outputs written before and the folders
		// made for them go too.
		_ = a.Destroy()
		removeCreated(createdDirs)
		return nil, err
	}
	for _, out := range outs {
		created, err := mkdirAllCreated(filepath.Dir(out))
		createdDirs = append(createdDirs, created...)
		if err != nil {
			return fail(fmt.Errorf("output: creating directory: %w", err))
		}
	}
	for i, spec := range c.specs {
		w := &writer{ctx: ctx, ui: ui, cfg: c, spec: spec, src: src, info: info, out: outs[i]}
		out, err := w.writeAndFinish()
		if err != nil {
			return fail(err)
		}
		a.Outputs = append(a.Outputs, out)
	}
	return a, nil
}

// writeAndFinish writes the output and moves it into place; whatever it
// made is removed when it fails.
func (w *writer) writeAndFinish() (image.Output, error) {
	defer w.cleanup()
	if err := w.write(); err != nil {
		return image.Output{}, w.explainNoSpace(err)
	}
	out, err := w.finish()
	return out, w.explainNoSpace(err)
}

// manifestOf is the winbake manifest the input carries: its "manifest"
// state, else its one <name>.json file; "" when it has none.
func manifestOf(a packersdk.Artifact) string {
	if path, _ := a.State(image.StateManifest).(string); path != "" {
		return path
	}
	var found []string
	for _, f := range a.Files() {
		if strings.HasSuffix(f, ".json") {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		return ""
	}
	abs, err := filepath.Abs(found[0])
	if err != nil {
		return ""
	}
	return abs
}

// mkdirAllCreated is os.MkdirAll that returns the directories it created,
// outermost first.
func mkdirAllCreated(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	return missing, os.MkdirAll(dir, 0o755)
}

// removeCreated removes the directories mkdirAllCreated made, innermost
// first, where they are empty.
func removeCreated(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}

// outputPath renders the output path for the input disk src, and refuses
// paths that would overwrite the input or, without -force, another file.
func (p *PostProcessor) outputPath(src string, spec formatSpec) (string, error) {
	c := &p.config
	base := filepath.Base(src)
	data := outputTemplateData{
		InputDir:  filepath.Dir(src),
		InputName: strings.TrimSuffix(base, filepath.Ext(base)),
		Ext:       spec.Name,
	}
	tmpl := c.Output
	if tmpl == "" {
		tmpl = defaultOutput
	}
	out, err := c.renderOutput(tmpl, data)
	if err != nil {
		return "", fmt.Errorf("output: %w", err)
	}
	if out, err = filepath.Abs(out); err != nil {
		return "", fmt.Errorf("output: %w", err)
	}
	if sameFile(out, src) {
		if c.Output != "" {
			return "", fmt.Errorf("output: %s is the input disk image; choose another path", out)
		}
		if out, err = c.renderOutput(defaultOutputOnCollision, data); err != nil {
			return "", fmt.Errorf("output: %w", err)
		}
		if out, err = filepath.Abs(out); err != nil {
			return "", fmt.Errorf("output: %w", err)
		}
	}
	if fi, err := os.Stat(out); err == nil {
		if fi.IsDir() {
			return "", fmt.Errorf("output: %s is a directory; name a file", out)
		}
		if !c.PackerForce {
			return "", fmt.Errorf("output: %s already exists; remove it or run Packer with -force", out)
		}
	}
	return out, nil
}

func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// findDiskImage picks the disk image among files: the only file, else the one
// file qemu-img recognises as a non-raw image, else the one raw file named
// *.raw or *.img.
func findDiskImage(ctx context.Context, files []string) (string, imageInfo, error) {
	type candidate struct {
		path string
		info imageInfo
	}
	var all []candidate
	var listed []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", imageInfo{}, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", imageInfo{}, fmt.Errorf("input artifact file %s: %w", f, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		info, err := qemuImgInfo(ctx, abs)
		if err != nil {
			return "", imageInfo{}, fmt.Errorf("inspecting input artifact file %s: %w", abs, err)
		}
		all = append(all, candidate{abs, info})
		listed = append(listed, fmt.Sprintf("%s (%s)", abs, info.Format))
	}
	pick := func(cs []candidate) (string, imageInfo, error) {
		return cs[0].path, cs[0].info, nil
	}
	switch len(all) {
	case 0:
		return "", imageInfo{}, fmt.Errorf("the input artifact has no regular file to use as disk image (files: %s)",
			strings.Join(files, ", "))
	case 1:
		return pick(all)
	}

	var images, rawByName []candidate
	for _, cand := range all {
		if cand.info.Format != "raw" {
			images = append(images, cand)
			continue
		}
		switch strings.ToLower(filepath.Ext(cand.path)) {
		case ".raw", ".img":
			rawByName = append(rawByName, cand)
		}
	}
	switch {
	case len(images) == 1:
		return pick(images)
	case len(images) > 1:
		return "", imageInfo{}, fmt.Errorf("the input artifact has several disk images, cannot tell which to use: %s",
			strings.Join(listed, ", "))
	case len(rawByName) == 1:
		return pick(rawByName)
	}
	return "", imageInfo{}, fmt.Errorf("cannot tell which file of the input artifact is the disk image "+
		"(looked for one file qemu-img recognises as qcow2/vhdx/vmdk/..., else one raw file named *.raw or *.img): %s",
		strings.Join(listed, ", "))
}

// writer makes one output file. Everything it creates is removed by cleanup
// unless finish succeeded.
type writer struct {
	ctx  context.Context
	ui   packersdk.Ui
	cfg  *Config
	spec formatSpec
	src  string
	info imageInfo
	out  string

	partial string   // output being written
	sha256  string   // hex SHA-256 of partial, when computed while writing
	temps   []string // other files to remove
	done    bool
}

func (w *writer) cleanup() {
	if w.done {
		return
	}
	for _, f := range append(w.temps, w.partial) {
		if f != "" {
			_ = os.Remove(f)
		}
	}
}

// tempPath reserves a unique hidden file name next to the output.
func (w *writer) tempPath(suffix string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(w.out), "."+filepath.Base(w.out)+".*"+suffix)
	if err != nil {
		return "", fmt.Errorf("creating temporary file: %w", err)
	}
	name := f.Name()
	_ = f.Close()
	return name, nil
}

func (w *writer) write() error {
	var err error
	if w.partial, err = w.tempPath(".partial"); err != nil {
		return err
	}
	if w.spec.Name == "qcow2" {
		if wrote, err := w.writeQcow2Go(); wrote || err != nil {
			return err
		}
	}
	if w.spec.QemuFormat != "" {
		return w.writeQemu()
	}

	return w.writeStream()
}

func (w *writer) sayPercent(what string) func(int) {
	return func(pct int) { w.ui.Say(fmt.Sprintf("%s: %d%%", what, pct)) }
}

// qemuOptions are the qemu-img convert options for the output format.
func (w *writer) qemuOptions() []string {
	// More coroutines than the default 8 keep a disk busy on large images.
	opts := []string{"-m", "16"}
	switch w.spec.Name {
	case "qcow2":
		if w.cfg.Qcow2Compression != qcow2None {
			opts = append(opts, "-c", "-o", "compression_type="+w.cfg.Qcow2Compression)
		}
		// Out-of-order writes let qemu compress clusters in parallel; the
		// image stays valid, only the cluster order within the file varies.
		opts = append(opts, "-W")
	case "raw":
		opts = append(opts, "-W")
	case "vhdx":
		opts = append(opts, "-o", "subformat=dynamic")
	case "vmdk":
		// Stream-optimized VMDKs are written in order.
		opts = append(opts, "-o", "subformat=streamOptimized")
	}
	return opts
}

func (w *writer) writeQemu() error {
	desc := w.spec.Name
	if w.spec.Name == "qcow2" {
		desc = fmt.Sprintf("qcow2 (%s compression)", w.cfg.Qcow2Compression)
	}
	w.ui.Say(fmt.Sprintf("Converting %s to %s with qemu-img...", filepath.Base(w.src), desc))
	return qemuImgConvert(w.ctx, w.src, w.info.Format, w.partial, w.spec.QemuFormat,
		w.qemuOptions(), w.sayPercent("qemu-img convert"))
}

// diskLayout returns the guest bytes of the input, read straight from the
// input file when qemu-img map says they can be (raw and uncompressed
// qcow2), else from a temporary sparse raw conversion next to the output.
func (w *writer) diskLayout() (*diskLayout, error) {
	layout, ok, err := readLayout(w.ctx, w.src, w.info)
	if err != nil || ok {
		return layout, err
	}
	tmp, err := w.tempPath(".raw.tmp")
	if err != nil {
		return nil, err
	}
	w.temps = append(w.temps, tmp)
	w.ui.Say(fmt.Sprintf("Converting %s (%s) to a temporary raw image %s...", filepath.Base(w.src), w.info.Format, tmp))
	err = qemuImgConvert(w.ctx, w.src, w.info.Format, tmp, "raw",
		[]string{"-m", "16", "-W"}, w.sayPercent("qemu-img convert to raw"))
	if err != nil {
		return nil, err
	}
	layout, ok, err = readLayout(w.ctx, tmp, imageInfo{Format: "raw", VirtualSize: w.info.VirtualSize})
	if err == nil && !ok {
		err = fmt.Errorf("qemu-img map cannot map the raw conversion %s", tmp)
	}
	return layout, err
}

// progress reports total guest bytes; add counts done ones.
func (w *writer) progress(name string, total int64) (add func(int64), done func()) {
	return progress.Counter(w.ui, name, total)
}

// writeStream writes the dd.* formats: gzip (dd.gz, and dd.tgz as a tar
// with the single member TarMemberName) on all cores, or xz with `xz -T0`.
// The SHA-256 of the output is computed as it is written.
func (w *writer) writeStream() error {
	layout, err := w.diskLayout()
	if err != nil {
		return err
	}
	defer layout.Close()
	level := w.cfg.level(w.spec)
	tool := fmt.Sprintf("gzip level %d, %d cores", level, runtime.GOMAXPROCS(0))
	if w.spec.Name == "dd.xz" {
		tool = fmt.Sprintf("xz -%d -T0", level)
	}
	w.ui.Say(fmt.Sprintf("Compressing the disk bytes to %s (%s; %s of data, %s virtual)...",
		w.spec.Name, tool, humanBytes(layout.dataBytes()), humanBytes(layout.size)))

	f, err := os.OpenFile(w.partial, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	add, done := w.progress(filepath.Base(w.src), layout.size)
	defer done()

	switch w.spec.Name {
	case "dd.gz", "dd.tgz":
		pieces := diskPieces(layout.size)
		if w.spec.Name == "dd.tgz" {
			head, tail, terr := tarFraming(layout.size)
			if terr != nil {
				return terr
			}
			pieces = append(append([]streamPiece{{literal: head}}, pieces...), streamPiece{literal: tail})
		}
		g := &gzipStream{level: level, layout: layout, progress: add}
		err = g.write(w.ctx, bw, pieces)
	case "dd.xz":
		x := &xzStream{level: level, layout: layout, progress: add}
		err = x.write(w.ctx, bw)
	default:
		err = fmt.Errorf("format %s: no writer", w.spec.Name)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if ctxErr := w.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("writing %s: %w", w.spec.Name, err)
	}
	w.sha256 = hex.EncodeToString(h.Sum(nil))
	return f.Close()
}

// tarFraming returns what comes before and after the disk bytes in a tar
// archive holding them as the single member TarMemberName.
func tarFraming(size int64) (head, tail []byte, err error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     TarMemberName,
		Size:     size,
		Mode:     0o644,
		// A fixed time keeps the archive a function of the disk bytes.
		ModTime: time.Unix(0, 0),
		Format:  tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, nil, err
	}
	head = bytes.Clone(buf.Bytes())
	// The member is padded to a 512-byte block; two zero blocks end the
	// archive.
	pad := (512 - size%512) % 512
	tail = make([]byte, pad+1024)
	return head, tail, nil
}

// finish checks the finished output, hashes it, and moves it into place.
func (w *writer) finish() (image.Output, error) {
	if err := w.ctx.Err(); err != nil {
		return image.Output{}, err
	}
	sum := w.sha256
	var size int64
	if sum == "" {
		w.ui.Say(fmt.Sprintf("Computing SHA-256 of %s...", filepath.Base(w.out)))
		var err error
		// Read back from the page cache qemu-img just filled. Outputs are
		// not fsynced: like qemu-img and Packer, winbake leaves write-back
		// to the kernel; a file gets its final name only once it is
		// complete, which is what the post-processors after it rely on.
		if sum, size, err = diskcheck.FileSHA256(w.ctx, w.partial); err != nil {
			return image.Output{}, err
		}
	} else {
		fi, err := os.Stat(w.partial)
		if err != nil {
			return image.Output{}, err
		}
		size = fi.Size()
	}
	if err := os.Chmod(w.partial, 0o644); err != nil {
		return image.Output{}, err
	}
	if err := os.Rename(w.partial, w.out); err != nil {
		return image.Output{}, fmt.Errorf("moving %s into place: %w", w.out, err)
	}
	w.done = true
	for _, f := range w.temps {
		_ = os.Remove(f)
	}
	w.ui.Say(fmt.Sprintf("Wrote %s (%s, sha256 %s)", w.out, humanBytes(size), sum))
	return image.Output{Path: w.out, Format: w.spec.Name, SHA256: sum, Size: size,
		DiskFormat: w.spec.DiskFormat, MaasFiletype: w.spec.MaasFiletype}, nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
