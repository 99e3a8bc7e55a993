package verify

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
)

func TestConfigDriveReadsBackAsNovaLaysItOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config-drive.iso")
	m := Metadata{
		UUID: "0f3c2c52-5a8e-4d7b-9e0b-3b2f6c1a9d11", Hostname: "win-verify",
		PublicKeys: map[string]string{"winbake": "ssh-rsa AAAAB3Nza winbake"},
		AdminPass:  "S3cret-pass", UserData: []byte("#ps1_sysnative\r\nSet-Content C:\\marker.txt ok\r\n"),
	}
	if err := WriteConfigDrive(path, m, "52:54:00:12:34:56"); err != nil {
		t.Fatal(err)
	}
	label, files, err := ReadConfigDrive(path)
	if err != nil {
		t.Fatal(err)
	}
	if label != ConfigDriveLabel {
		t.Errorf("label %q, want %q", label, ConfigDriveLabel)
	}
	want := []string{"openstack/latest/meta_data.json", "openstack/latest/network_data.json",
		"openstack/latest/user_data", "openstack/latest/vendor_data.json", "openstack/latest/vendor_data2.json"}
	if len(files) != len(want) {
		t.Errorf("files %v, want %v", keys(files), want)
	}
	for _, name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("%s missing; the drive holds %v", name, keys(files))
		}
	}
	var meta struct {
		UUID       string            `json:"uuid"`
		Hostname   string            `json:"hostname"`
		PublicKeys map[string]string `json:"public_keys"`
		AdminPass  string            `json:"admin_pass"`
		Keys       []struct{ Name, Type, Data string }
	}
	if err := json.Unmarshal(files["openstack/latest/meta_data.json"], &meta); err != nil {
		t.Fatal(err)
	}
	if meta.UUID != m.UUID || meta.Hostname != m.Hostname || meta.AdminPass != m.AdminPass ||
		meta.PublicKeys["winbake"] != m.PublicKeys["winbake"] || len(meta.Keys) != 1 || meta.Keys[0].Type != "ssh" {
		t.Errorf("meta_data.json read back as %+v", meta)
	}
	if !bytes.Equal(files["openstack/latest/user_data"], m.UserData) {
		t.Errorf("user_data read back as %q", files["openstack/latest/user_data"])
	}
	var network struct {
		Links    []map[string]any `json:"links"`
		Networks []map[string]any `json:"networks"`
	}
	if err := json.Unmarshal(files["openstack/latest/network_data.json"], &network); err != nil {
		t.Fatal(err)
	}
	if len(network.Links) != 1 || network.Links[0]["ethernet_mac_address"] != "52:54:00:12:34:56" || network.Networks[0]["type"] != "ipv4_dhcp" {
		t.Errorf("network_data.json read back as %+v", network)
	}
}

func TestConfigDriveLeavesOutAdminPassUnlessAsked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cd.iso")
	if err := WriteConfigDrive(path, Metadata{UUID: "u", Hostname: "h"}, "52:54:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	_, files, err := ReadConfigDrive(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(files["openstack/latest/meta_data.json"], []byte("admin_pass")) {
		t.Errorf("meta_data.json has admin_pass: %s", files["openstack/latest/meta_data.json"])
	}
	if _, ok := files["openstack/latest/user_data"]; ok {
		t.Error("user_data written without user data")
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
