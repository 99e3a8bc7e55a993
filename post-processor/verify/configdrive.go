package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kdomanski/iso9660"

	"github.com/winbake/packer-plugin-winbake/version"
)

// ConfigDriveLabel is the volume label cloud-init and cloudbase-init look
// for.
const ConfigDriveLabel = "config-2"

// Metadata is what one instance is told at first boot: the content of
// openstack/latest/meta_data.json and the files beside it.
type Metadata struct {
	UUID     string
	Hostname string
	// PublicKeys maps key names to OpenSSH public keys.
	PublicKeys map[string]string
	// AdminPass is left out of meta_data.json when empty.
	AdminPass string
	UserData  []byte
}

// metaDataJSON is openstack/latest/meta_data.json as Nova writes it.
type metaDataJSON struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	LaunchIndex      int               `json:"launch_index"`
	AvailabilityZone string            `json:"availability_zone"`
	ProjectID        string            `json:"project_id"`
	Meta             map[string]string `json:"meta"`
	PublicKeys       map[string]string `json:"public_keys,omitempty"`
	Keys             []metaDataKey     `json:"keys,omitempty"`
	AdminPass        string            `json:"admin_pass,omitempty"`
	Devices          []any             `json:"devices"`
}

type metaDataKey struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// MetaDataJSON renders meta_data.json.
func (m Metadata) MetaDataJSON() ([]byte, error) {
	doc := metaDataJSON{
		UUID: m.UUID, Name: m.Hostname, Hostname: m.Hostname, AvailabilityZone: "nova",
		ProjectID: "winbake", Meta: map[string]string{}, PublicKeys: m.PublicKeys,
		AdminPass: m.AdminPass, Devices: []any{},
	}
	names := make([]string, 0, len(m.PublicKeys))
	for name := range m.PublicKeys {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		doc.Keys = append(doc.Keys, metaDataKey{Name: name, Type: "ssh", Data: m.PublicKeys[name]})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// NetworkDataJSON renders network_data.json for the one NIC of QEMU's
// user network, configured by DHCP (Nova's "ipv4_dhcp" network type).
func NetworkDataJSON(mac string) ([]byte, error) {
	doc := map[string]any{
		"links": []map[string]any{{
			"id": "tap0", "type": "phy", "ethernet_mac_address": mac, "mtu": 1500,
		}},
		"networks": []map[string]any{{
			"id": "network0", "type": "ipv4_dhcp", "link": "tap0", "network_id": "winbake-user-net",
		}},
		"services": []any{},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// ConfigDriveFiles lays the metadata out as Nova does under openstack/latest.
// Nova also writes dated copies (openstack/2012-08-10, ...) and the EC2
// tree; cloudbase-init and cloud-init read openstack/latest, so only latest
// is written.
func ConfigDriveFiles(m Metadata, mac string) (map[string][]byte, error) {
	meta, err := m.MetaDataJSON()
	if err != nil {
		return nil, err
	}
	network, err := NetworkDataJSON(mac)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"openstack/latest/meta_data.json":    meta,
		"openstack/latest/network_data.json": network,
		"openstack/latest/vendor_data.json":  []byte("{}"),
		"openstack/latest/vendor_data2.json": []byte("{}"),
	}
	if len(m.UserData) > 0 {
		files["openstack/latest/user_data"] = m.UserData
	}
	return files, nil
}

// ConfigDriveTool masters the config drive's ISO 9660 image.
const ConfigDriveTool = "xorriso"

// configDriveMasteringArgs are the options Nova gives genisoimage
// (nova/virt/configdrive.py, ConfigDriveBuilder._make_iso9660), for
// xorriso's emulation of it: Rock Ridge (-r) and Joliet (-J) names beside
// ISO 9660 names of up to 31 characters (-l) that keep their case, dots
// and a leading dot, and the path tables every mastering tool writes.
// Windows' CD-ROM file system finds directories only through the path
// table and reads the Joliet names, so cloudbase-init's ConfigDriveService
// reads openstack\latest\meta_data.json on this drive as on Nova's.
func configDriveMasteringArgs(out, dir string) []string {
	return []string{"-as", "genisoimage", "-o", out, "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
		"-publisher", "winbake " + version.Version, "-quiet", "-J", "-r", "-V", ConfigDriveLabel, dir}
}

// WriteConfigDrive writes the ConfigDrive v2 ISO for m to path, which must
// not exist: the files are laid out in a temporary directory beside path
// and mastered with ConfigDriveTool as Nova masters them; the image is
// renamed into place once complete, and nothing is left behind on failure.
func WriteConfigDrive(path string, m Metadata, mac string) error {
	files, err := ConfigDriveFiles(m, mac)
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("config drive: %s already exists", path)
	}
	tool, err := exec.LookPath(ConfigDriveTool)
	if err != nil {
		return fmt.Errorf("config drive: %s (Debian/Ubuntu package xorriso) is needed on PATH to write it: %w", ConfigDriveTool, err)
	}
	// The files hold admin_pass: only this user reads them.
	work, err := os.MkdirTemp(filepath.Dir(path), ".config-drive-")
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	for name, content := range files {
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("config drive: %w", err)
		}
		if err := os.WriteFile(p, content, 0o600); err != nil {
			return fmt.Errorf("config drive: %w", err)
		}
	}
	image := filepath.Join(work, "config-drive.iso")
	cmd := exec.Command(tool, configDriveMasteringArgs(image, tree)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("config drive: %s %s: %v: %s", ConfigDriveTool, strings.Join(cmd.Args[1:], " "), err, bytes.TrimSpace(out))
	}
	if err := os.Chmod(image, 0o600); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if err := os.Rename(image, path); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	return nil
}

// ReadConfigDrive reads the files of a config drive back, by their Rock
// Ridge names as Linux reads them (github.com/kdomanski/iso9660), and the
// primary volume descriptor's label.
func ReadConfigDrive(path string) (label string, files map[string][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	img, err := iso9660.OpenImage(f)
	if err != nil {
		return "", nil, err
	}
	if label, err = img.Label(); err != nil {
		return "", nil, err
	}
	root, err := img.RootDir()
	if err != nil {
		return "", nil, err
	}
	files = map[string][]byte{}
	var walk func(dir *iso9660.File, prefix string) error
	walk = func(dir *iso9660.File, prefix string) error {
		children, err := dir.GetChildren()
		if err != nil {
			return err
		}
		for _, c := range children {
			name := prefix + c.Name()
			if c.IsDir() {
				if err := walk(c, name+"/"); err != nil {
					return err
				}
				continue
			}
			var b bytes.Buffer
			if _, err := b.ReadFrom(c.Reader()); err != nil {
				return err
			}
			files[name] = b.Bytes()
		}
		return nil
	}
	return label, files, walk(root, "")
}
