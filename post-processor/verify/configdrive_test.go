package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/cdfs"
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

// The drive is mastered as Nova masters it: path tables, Joliet and Rock
// Ridge, so Windows' CD-ROM file system (the stand-in's model of it)
// finds openstack\latest\meta_data.json.
func TestConfigDriveHasPathTablesAndIsReadByCDFS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config-drive.iso")
	m := Metadata{UUID: "0f3c2c52-5a8e-4d7b-9e0b-3b2f6c1a9d11", Hostname: "win-verify", UserData: []byte("#ps1_sysnative\r\n")}
	if err := WriteConfigDrive(path, m, "52:54:00:12:34:56"); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pvd := img[16*cdfs.SectorSize:]
	if size, loc := binary.LittleEndian.Uint32(pvd[132:]), binary.LittleEndian.Uint32(pvd[140:]); size == 0 || loc == 0 {
		t.Errorf("primary volume descriptor: path table of %d bytes at block %d", size, loc)
	}
	info := string(mediatest.Run(t, "genisoimage", "isoinfo", "-d", "-i", path))
	if !strings.Contains(info, "Volume id: config-2") || !strings.Contains(info, "Joliet") || !strings.Contains(info, "Rock Ridge") {
		t.Errorf("isoinfo -d:\n%s", info)
	}
	table := string(mediatest.Run(t, "genisoimage", "isoinfo", "-p", "-i", path))
	if !regexp.MustCompile(`Path table starts at block [1-9][0-9]*, size [1-9][0-9]*`).MatchString(table) ||
		!strings.Contains(table, " openstack") || !strings.Contains(table, " latest") {
		t.Errorf("isoinfo -p:\n%s", table)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vol, err := cdfs.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if !vol.Joliet() || vol.Label() != ConfigDriveLabel || vol.PathTableSize() == 0 {
		t.Errorf("CDFS mounts %s", vol.Describe())
	}
	want, err := ConfigDriveFiles(m, "52:54:00:12:34:56")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range want {
		got, err := vol.ReadFile(strings.ReplaceAll(name, "/", `\`))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s through CDFS: %q %v", name, got, err)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", st.Mode(), err)
	}
}

// A failed write leaves nothing behind and says what failed.
func TestConfigDriveWriteFailures(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config-drive.iso")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteConfigDrive(path, Metadata{UUID: "u", Hostname: "h"}, "52:54:00:00:00:01"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("existing file overwritten: %q", b)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	err := WriteConfigDrive(path, Metadata{UUID: "u", Hostname: "h"}, "52:54:00:00:00:01")
	if err == nil || !strings.Contains(err.Error(), "xorriso (Debian/Ubuntu package xorriso) is needed") {
		t.Errorf("without xorriso: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}

	// The mastering tool fails: its message is in the error, its
	// temporary directory is gone.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "xorriso"), []byte("#!/bin/sh\necho 'xorriso : FAILURE : no space left' >&2\nexit 5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	err = WriteConfigDrive(path, Metadata{UUID: "u", Hostname: "h"}, "52:54:00:00:00:01")
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "-as genisoimage") {
		t.Errorf("failing xorriso: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
