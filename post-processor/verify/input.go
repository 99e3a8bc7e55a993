package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/post-processor/compress"
	"github.com/winbake/packer-plugin-winbake/post-processor/sysprep"
)

// inputImage is the generalized image the input artifact describes.
type inputImage struct {
	Dir          string
	ManifestPath string
	Name         string
	Manifest     sysprep.Manifest
	DiskPath     string
	EFIVarsPath  string // "" for BIOS
	TPMStateDir  string // "" without a TPM
}

// readInput finds the manifest of the input (winbake-sysprep's artifact or
// winbake-compress's, which keeps the manifest) and checks that it
// describes a generalized qcow2 image whose files are there.
func readInput(a packersdk.Artifact) (*inputImage, error) {
	if a == nil {
		return nil, errors.New("no input artifact: winbake-verify follows winbake-sysprep (or winbake-compress after it)")
	}
	path, _ := a.State("manifest").(string)
	if path == "" {
		var found []string
		for _, f := range a.Files() {
			if strings.HasSuffix(f, ".json") {
				found = append(found, f)
			}
		}
		if len(found) != 1 {
			if a.BuilderId() == compress.BuilderId {
				return nil, fmt.Errorf("the input is winbake-compress's file %s, which carries no manifest of the firmware, TPM and machine the image boots with: put winbake-verify right after winbake-sysprep and winbake-compress after it (winbake-verify passes its input on unchanged)", a.Id())
			}
			return nil, fmt.Errorf("the input artifact (%s, builder %s) has no winbake manifest (<vm_name>.json): winbake-verify takes the artifact of winbake-sysprep", a.Id(), a.BuilderId())
		}
		path = found[0]
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the input manifest: %w", err)
	}
	in := &inputImage{Dir: filepath.Dir(path), ManifestPath: path, Name: strings.TrimSuffix(filepath.Base(path), ".json")}
	if err := json.Unmarshal(b, &in.Manifest); err != nil {
		return nil, fmt.Errorf("input manifest %s: %w", path, err)
	}
	m := &in.Manifest
	if !m.Generalized {
		return nil, fmt.Errorf("the input image %s is not generalized: winbake-verify boots an image as a cloud instance, which needs winbake-sysprep first", path)
	}
	if m.Disk == "" || m.Format != "qcow2" {
		return nil, fmt.Errorf("input manifest %s names no qcow2 disk (disk %q, format %q)", path, m.Disk, m.Format)
	}
	in.DiskPath = filepath.Join(in.Dir, m.Disk)
	if _, err := os.Stat(in.DiskPath); err != nil {
		return nil, fmt.Errorf("input disk: %w", err)
	}
	switch m.Firmware {
	case wbcommon.FirmwareUEFI:
		if m.EFIVars == "" {
			return nil, fmt.Errorf("input manifest %s: a UEFI image without efivars", path)
		}
		in.EFIVarsPath = filepath.Join(in.Dir, m.EFIVars)
		if _, err := os.Stat(in.EFIVarsPath); err != nil {
			return nil, fmt.Errorf("input UEFI variables: %w", err)
		}
	case wbcommon.FirmwareBIOS:
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
