// Package compress implements the winbake-compress post-processor: it turns
// the disk image of a build into a distributable image file (qcow2, raw,
// vhdx, vmdk, or a gzip/xz-compressed raw disk for MAAS).
package compress

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

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
	ui.Say(fmt.Sprintf("Input disk image: %s (%s, %s virtual)", src, info.Format, progress.Bytes(info.VirtualSize)))
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
