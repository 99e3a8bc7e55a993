package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/linuximage"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

// osTypeOf is the os_type of the input: the setting, else windows when the
// input carries a winbake manifest, else linux.
func osTypeOf(c *Config, a packersdk.Artifact) string {
	if c.OSType != "" {
		return c.OSType
	}
	if a == nil {
		return OSWindows
	}
	if a.BuilderId() == image.CompressBuilderID {
		if m, _ := a.State(image.StateManifest).(string); m != "" {
			return OSWindows
		}
		return OSLinux
	}
	if image.IsWinbakeImage(a) || image.ManifestOf(a) != "" {
		return OSWindows
	}
	return OSLinux
}

// linuxImage is a Linux disk to boot and what its os-release says.
type linuxImage struct {
	Disk        string
	Format      string
	VirtualSize int64
	OSRelease   *linuximage.OSRelease // nil when it could not be read
	ReadErr     error                 // why it could not
}

// readLinuxInput finds the disk of any artifact (winbake-compress's qcow2
// or raw output, a builder's one disk, or image_file) and reads its
// os-release without booting it.
func readLinuxInput(ctx context.Context, c *Config, a packersdk.Artifact) (*linuxImage, *inputImage, error) {
	if a == nil && c.ImageFile == "" {
		return nil, nil, fmt.Errorf("no input artifact: winbake-verify boots the artifact's disk image, or image_file")
	}
	path := c.ImageFile
	if path == "" {
		var err error
		if path, err = linuxDisk(a); err != nil {
			return nil, nil, err
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	d, err := linuximage.Open(ctx, abs, os.Getenv("PACKER_TMP_DIR"))
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	if d.Format != "qcow2" && d.Format != "raw" {
		return nil, nil, fmt.Errorf("%s is a %s image; winbake-verify boots qcow2 or raw (convert it with winbake-compress)", abs, d.Format)
	}
	li := &linuxImage{Disk: abs, Format: d.Format, VirtualSize: d.VirtualSize}
	li.OSRelease, li.ReadErr = d.OSRelease(ctx)
	if li.OSRelease == nil && c.OSType == "" {
		// Linux was only inferred from the missing winbake manifest: a
		// Windows image from another builder lands here too.
		return nil, nil, fmt.Errorf("the input %s has no winbake manifest, so it is not a winbake Windows image, and no Linux os-release could be read from it (%v): verify Windows images after winbake-sysprep, or set os_type = \"linux\" (and ssh_username) for a Linux image whose os-release winbake cannot read", abs, li.ReadErr)
	}

	name := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	in := &inputImage{Dir: filepath.Dir(abs), Name: name, DiskPath: abs, ManifestPath: abs}
	m := &in.Manifest
	m.Disk, m.Format, m.Generalized = filepath.Base(abs), d.Format, true
	m.Firmware = c.Firmware
	if m.Firmware == "" {
		m.Firmware = qemuvm.FirmwareBIOS
	}
	m.Machine = c.MachineType
	if m.Machine == "" {
		// Nova's default for x86_64 (libvirt hw_machine_type unset); on
		// q35 the config drive is a SATA CD, which needs AHCI, and
		// Debian's cloud kernel has none (CONFIG_SATA_AHCI unset).
		m.Machine = "pc"
	}
	m.DiskInterface = c.DiskInterface
	if m.DiskInterface == "" {
		m.DiskInterface = qemuvm.DiskVirtioBlk
	}
	m.NetDevice = qemuvm.NetVirtio
	return li, in, nil
}

// linuxDisk picks the disk of an artifact that is not a winbake image.
func linuxDisk(a packersdk.Artifact) (string, error) {
	if a.BuilderId() == image.CompressBuilderID {
		outputs, err := image.CompressedOutputs(a)
		if err != nil {
			return "", err
		}
		for _, o := range outputs {
			if o.Bootable() {
				return o.Path, nil
			}
		}
		return "", fmt.Errorf("winbake-verify boots a qcow2 or raw image, and the winbake-compress artifact holds %s: add qcow2 to its formats", image.Formats(outputs))
	}
	var disks []string
	for _, f := range a.Files() {
		switch strings.ToLower(filepath.Ext(f)) {
		case ".qcow2", ".raw", ".img":
			disks = append(disks, f)
		}
	}
	switch {
	case len(disks) == 1:
		return disks[0], nil
	case len(disks) == 0 && len(a.Files()) == 1:
		// The hashicorp qemu builder names its disk after vm_name, often
		// without an extension.
		return a.Files()[0], nil
	}
	return "", fmt.Errorf("image_file: the input artifact of builder %q has files %v and winbake-verify cannot tell which disk to boot; set image_file", a.BuilderId(), a.Files())
}

// sshUser is ssh_username, else the distribution's default user.
func sshUser(c *Config, li *linuxImage) (string, error) {
	if c.SSHUsername != "" {
		return c.SSHUsername, nil
	}
	if li.OSRelease == nil {
		return "", fmt.Errorf("ssh_username: the image's os-release could not be read (%v), so its default user is unknown; set ssh_username", li.ReadErr)
	}
	if u := linuximage.DefaultUser(li.OSRelease.ID); u != "" {
		return u, nil
	}
	return "", fmt.Errorf("ssh_username: the default user of %q (os-release ID %s) is not known here; set ssh_username to the user the image's cloud.cfg names", li.OSRelease.PrettyName, li.OSRelease.ID)
}
