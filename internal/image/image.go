// Package image holds the contracts winbake's components share about the
// images they pass along a Packer build: who made an artifact (builder
// IDs), the winbake manifest that describes an image (Manifest, written by
// the builders; GeneralizedManifest, by winbake-sysprep) and how an image
// is opened from it (Open), and what a winbake-compress artifact holds
// (its outputs and the winbake manifest of the image they were written
// from).
//
// Packer hands artifacts from one plugin process to the next over RPC,
// where only plain values survive: the outputs travel as one JSON string
// in the artifact's state.
package image

import (
	"encoding/json"
	"fmt"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Builder IDs of winbake's artifacts.
const (
	QemuBuilderID     = "winbake.qemu"
	LibvirtBuilderID  = "winbake.libvirt"
	SysprepBuilderID  = "winbake.post-processor.sysprep"
	CompressBuilderID = "winbake.post-processor.compress"
	VerifyBuilderID   = "winbake.post-processor.verify"
	GlanceBuilderID   = "winbake.post-processor.glance"
	MaasBuilderID     = "winbake.post-processor.maas"
)

// IsGolden reports whether an artifact is a winbake builder's golden
// image: the installed, not generalized disk a rebuild starts from.
func IsGolden(a packersdk.Artifact) bool {
	id := a.BuilderId()
	return id == QemuBuilderID || id == LibvirtBuilderID
}

// IsWinbakeImage reports whether an artifact is a disk image with its
// winbake manifest: a golden image or winbake-sysprep's generalized copy.
func IsWinbakeImage(a packersdk.Artifact) bool {
	return IsGolden(a) || a.BuilderId() == SysprepBuilderID
}

// Artifact state names.
const (
	// StateManifest is the path of the winbake manifest (<vm_name>.json)
	// that describes the image: firmware, TPM, machine, Windows, updates.
	StateManifest = "manifest"
	// StateOutputs is a winbake-compress artifact's outputs as JSON.
	StateOutputs = "outputs"
)

// Output is one file winbake-compress wrote.
type Output struct {
	Path   string `json:"path"`
	Format string `json:"format"` // winbake-compress format: qcow2, raw, vhdx, vmdk, dd.gz, dd.tgz, dd.xz
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// DiskFormat is Glance's disk_format, empty for the dd.* formats.
	DiskFormat string `json:"disk_format,omitempty"`
	// MaasFiletype is the MAAS boot-resource filetype of the dd.* formats
	// (ddgz, ddtgz, ddxz), empty for the others.
	MaasFiletype string `json:"maas_filetype,omitempty"`
}

// Bootable reports whether QEMU boots the file as it is.
func (o Output) Bootable() bool { return o.Format == "qcow2" || o.Format == "raw" }

// EncodeOutputs is the StateOutputs value for outputs.
func EncodeOutputs(outputs []Output) string {
	b, err := json.Marshal(outputs)
	if err != nil {
		panic(err) // plain strings and numbers always marshal
	}
	return string(b)
}

// CompressedOutputs returns the outputs of a winbake-compress artifact, in
// the order they were configured.
func CompressedOutputs(a packersdk.Artifact) ([]Output, error) {
	if a.BuilderId() != CompressBuilderID {
		return nil, fmt.Errorf("the artifact of %s is not winbake-compress's", a.BuilderId())
	}
	raw, _ := a.State(StateOutputs).(string)
	var outputs []Output
	if err := json.Unmarshal([]byte(raw), &outputs); err != nil || len(outputs) == 0 {
		return nil, fmt.Errorf("the winbake-compress artifact %s does not list its outputs (state %q: %q)", a.Id(), StateOutputs, raw)
	}
	return outputs, nil
}

// Formats names the outputs' formats: "qcow2, dd.gz".
func Formats(outputs []Output) string {
	names := make([]string, len(outputs))
	for i, o := range outputs {
		names[i] = o.Format
	}
	return strings.Join(names, ", ")
}
