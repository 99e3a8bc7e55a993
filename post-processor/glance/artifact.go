package glance

import (
	"fmt"
)

// BuilderId identifies artifacts of the winbake-glance post-processor.
const BuilderId = "winbake.post-processor.glance"

// Artifact is an image in Glance.
type Artifact struct {
	ImageID  string
	Name     string
	Endpoint string // the Glance endpoint, e.g. http://glance:9292/
	Region   string
	// State values, see State.
	DiskFormat  string
	Checksum    string
	SHA512      string
	Size        int64
	Visibility  string
	Family      string
	HiddenOlder []string
	// KernelID and RamdiskID are the aki and ari of a UEC triple.
	KernelID  string
	RamdiskID string
	// Retired are the older images the retire policy acted on (or, with
	// dry_run, would have).
	Retired []RetireAction
}

func (a *Artifact) BuilderId() string { return BuilderId }

// Files is empty: the image lives in Glance.
func (a *Artifact) Files() []string { return nil }

// Id is the image ID.
func (a *Artifact) Id() string { return a.ImageID }

func (a *Artifact) String() string {
	return fmt.Sprintf("Glance image %s (%q, %s, %s) at %s", a.ImageID, a.Name, a.DiskFormat, a.Visibility, a.Endpoint)
}

// State answers "image_id", "image_name", "endpoint", "region",
// "disk_format", "checksum" (MD5), "os_hash_value" (SHA-512), "size",
// "visibility", "family", "hidden_images" (IDs hidden by keep_visible),
// "kernel_id" and "ramdisk_id" (layout = "uec").
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "image_id":
		return a.ImageID
	case "image_name":
		return a.Name
	case "endpoint":
		return a.Endpoint
	case "region":
		return a.Region
	case "disk_format":
		return a.DiskFormat
	case "checksum":
		return a.Checksum
	case "os_hash_value":
		return a.SHA512
	case "size":
		return a.Size
	case "visibility":
		return a.Visibility
	case "family":
		return a.Family
	case "hidden_images":
		return a.HiddenOlder
	case "kernel_id":
		return a.KernelID
	case "ramdisk_id":
		return a.RamdiskID
	}
	return nil
}

// Destroy keeps the image: deleting published images is a decision for
// their owner, not for a later failing build step.
func (a *Artifact) Destroy() error { return nil }
