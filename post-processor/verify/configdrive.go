package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/kdomanski/iso9660"
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
// tree; cloudbase-init and cloud-init read openstack/latest, and ISO 9660
// names cannot hold the dates' hyphens without Rock Ridge, so only latest
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

// WriteConfigDrive writes the ConfigDrive v2 ISO for m to path.
func WriteConfigDrive(path string, m Metadata, mac string) error {
	files, err := ConfigDriveFiles(m, mac)
	if err != nil {
		return err
	}
	w, err := iso9660.NewWriter()
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	defer w.Cleanup()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := w.AddFile(bytes.NewReader(files[name]), name); err != nil {
			return fmt.Errorf("config drive: adding %s: %w", name, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if err := w.WriteTo(f, ConfigDriveLabel); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("config drive: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("config drive: %w", err)
	}
	return nil
}

// ReadConfigDrive reads the files of a config drive back, by their ISO 9660
// names (lower case, without version suffix), and its label.
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
