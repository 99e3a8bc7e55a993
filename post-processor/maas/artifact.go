package maas

import (
	"fmt"
	"strconv"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// BuilderId identifies artifacts made by this post-processor.
const BuilderId = "winbake.post-processor.maas"

// Artifact is a boot resource published in MAAS.
type Artifact struct {
	// ResourceID is the MAAS boot-resource id.
	ResourceID int
	// Name is the boot-resource name, e.g. "windows/win2022".
	Name         string
	Architecture string
	Filetype     string
	SHA256       string
	// Version is the resource set holding this upload.
	Version string
	// MAASURL is the MAAS the resource lives in.
	MAASURL string
}

var _ packersdk.Artifact = (*Artifact)(nil)

func (a *Artifact) BuilderId() string { return BuilderId }

// Files is empty: the image lives in MAAS.
func (a *Artifact) Files() []string { return nil }

// Id is the MAAS boot-resource id.
func (a *Artifact) Id() string { return strconv.Itoa(a.ResourceID) }

func (a *Artifact) String() string {
	return fmt.Sprintf("MAAS boot resource %d: %s (%s, %s, set %s) at %s", a.ResourceID, a.Name, a.Architecture, a.Filetype, a.Version, a.MAASURL)
}

// State answers "resource_id" (int), "name", "architecture", "filetype",
// "sha256", "version" and "maas_url"; other names give nil.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "resource_id":
		return a.ResourceID
	case "name":
		return a.Name
	case "architecture":
		return a.Architecture
	case "filetype":
		return a.Filetype
	case "sha256":
		return a.SHA256
	case "version":
		return a.Version
	case "maas_url":
		return a.MAASURL
	}
	return nil
}

// Destroy leaves the boot resource in MAAS: publishing it is the point of
// the build, and Packer calls Destroy on intermediate artifacts.
func (a *Artifact) Destroy() error { return nil }
