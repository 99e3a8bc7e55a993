package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// Image is an image a winbake manifest describes: a builder's golden image
// or a generalized one, with the paths of the files its manifest names.
type Image struct {
	Dir          string // its directory
	ManifestPath string
	Name         string // manifest file name without .json
	// Manifest is the image's manifest; the fields winbake-sysprep adds
	// are zero for a golden image.
	Manifest    GeneralizedManifest
	DiskPath    string
	EFIVarsPath string // "" for BIOS
	TPMStateDir string // "" without a TPM
}

// BuildWinRM is how the image's build reached WinRM: its manifest's
// record, or for an image from before winbake recorded it, HTTP with
// Basic on 5985 (winrmsec.LegacyBuildWinRM).
func (in *Image) BuildWinRM() winrmsec.BuildWinRM {
	if in.Manifest.WinRM == nil {
		return winrmsec.LegacyBuildWinRM
	}
	return *in.Manifest.WinRM
}

// ManifestOf returns the path of the winbake manifest an artifact carries:
// its StateManifest state, else its one <name>.json file; "" when it has
// none.
func ManifestOf(a packersdk.Artifact) string {
	if path, _ := a.State(StateManifest).(string); path != "" {
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
	return found[0]
}

// Open reads the manifest at path and checks that it names a qcow2 disk
// and that the disk, UEFI variables and TPM state it names are there.
func Open(path string) (*Image, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the input manifest: %w", err)
	}
	in := &Image{Dir: filepath.Dir(path), ManifestPath: path, Name: strings.TrimSuffix(filepath.Base(path), ".json")}
	if err := json.Unmarshal(b, &in.Manifest); err != nil {
		return nil, fmt.Errorf("input manifest %s: %w", path, err)
	}
	m := &in.Manifest
	if m.WinRM != nil {
		if err := m.WinRM.Check(); err != nil {
			return nil, fmt.Errorf("input manifest %s: %w", path, err)
		}
	}
	if m.Disk == "" || m.Format != "qcow2" {
		return nil, fmt.Errorf("input manifest %s names no qcow2 disk (disk %q, format %q)", path, m.Disk, m.Format)
	}
	in.DiskPath = filepath.Join(in.Dir, m.Disk)
	if _, err := os.Stat(in.DiskPath); err != nil {
		return nil, fmt.Errorf("input disk: %w", err)
	}
	switch m.Firmware {
	case FirmwareUEFI:
		if m.EFIVars == "" {
			return nil, fmt.Errorf("input manifest %s: a UEFI image without efivars", path)
		}
		in.EFIVarsPath = filepath.Join(in.Dir, m.EFIVars)
		if _, err := os.Stat(in.EFIVarsPath); err != nil {
			return nil, fmt.Errorf("input UEFI variables: %w", err)
		}
	case FirmwareBIOS:
	default:
		return nil, fmt.Errorf("input manifest %s: firmware %q is neither uefi nor bios", path, m.Firmware)
	}
	if m.TPM {
		in.TPMStateDir = filepath.Join(in.Dir, m.TPMState)
		if fi, err := os.Stat(in.TPMStateDir); err != nil || !fi.IsDir() || m.TPMState == "" {
			return nil, fmt.Errorf("input TPM state %q: the image was built with a TPM whose state is missing (%v)", m.TPMState, err)
		}
	}
	return in, nil
}
