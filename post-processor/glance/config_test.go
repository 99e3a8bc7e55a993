package glance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

func TestConfigDefaults(t *testing.T) {
	p := configure(t, map[string]interface{}{"image_name": `Windows Server 2022 [{{ isotime "2006" }}]`})
	c := p.config
	if c.Visibility != "private" || c.ContainerFormat != "bare" || c.Method != MethodUpload || c.ImportTimeout.Minutes() != 30 {
		t.Errorf("defaults: visibility %q container_format %q method %q import_timeout %s", c.Visibility, c.ContainerFormat, c.Method, c.ImportTimeout)
	}
	if strings.Contains(c.Name, "isotime") || !strings.HasPrefix(c.Name, "Windows Server 2022 [20") {
		t.Errorf("image_name not rendered: %q", c.Name)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		raw  map[string]interface{}
		want string
	}{
		{map[string]interface{}{}, "image_name: is required"},
		{map[string]interface{}{"image_name": "x", "visibility": "everyone"}, `visibility: "everyone" is not supported; use one of private, shared, community, public`},
		{map[string]interface{}{"image_name": "x", "method": "web-download"}, `method: "web-download" is not supported; use "upload" or "glance-direct"`},
		{map[string]interface{}{"image_name": "x", "stores": []string{"a", "b"}}, "stores: method \"upload\" writes to one store"},
		{map[string]interface{}{"image_name": "x", "keep_visible": 2}, "keep_visible: needs family"},
		{map[string]interface{}{"image_name": "x", "keep_visible": -1, "family": "ws"}, "keep_visible: -1 is negative"},
		{map[string]interface{}{"image_name": "x", "family": "ws 2022"}, `family: "ws 2022" is not a valid family name`},
		{map[string]interface{}{"image_name": "x", "properties": map[string]string{"os_glance_x": "1"}}, `properties: "os_glance_x" uses the prefix os_glance_`},
		{map[string]interface{}{"image_name": "x", "properties": map[string]string{"min_ram": "1"}}, `properties: "min_ram" is an image field, not a property; use the min_ram setting`},
		{map[string]interface{}{"image_name": "x", "container_format": "zip"}, `container_format: "zip" is not supported`},
		{map[string]interface{}{"image_name": "x", "interface": "private"}, `interface: "private" is not supported`},
		{map[string]interface{}{"image_name": "x", "cert": "/c.pem"}, "cert: a client certificate needs both cert and key"},
		{map[string]interface{}{"image_name": "x", "image_endpoint": "glance:9292"}, `image_endpoint: "glance:9292" is not an http(s) URL`},
		{map[string]interface{}{"image_name": "x", "min_disk": -1}, "min_disk: -1 is negative"},
	}
	for _, tc := range cases {
		var p PostProcessor
		err := p.Configure(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%v) = %v; want an error containing %q", tc.raw, err, tc.want)
		}
	}
}

func TestCloudFromEnvKeepsTheDomains(t *testing.T) {
	env := map[string]string{
		"OS_AUTH_URL": "https://keystone.example:5000/v3", "OS_USERNAME": "u", "OS_PASSWORD": "secret-pw",
		"OS_PROJECT_NAME": "p", "OS_USER_DOMAIN_NAME": "Users", "OS_PROJECT_DOMAIN_NAME": "Projects",
		"OS_REGION_NAME": "R2", "OS_INTERFACE": "internal", "OS_INSECURE": "true",
	}
	ao, eo, tlsConfig, src, err := parseAuth(&AuthConfig{}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if ao.DomainName != "Users" || ao.Scope == nil || ao.Scope.ProjectName != "p" || ao.Scope.DomainName != "Projects" {
		t.Errorf("user domain %q, scope %+v; want Users and project p in Projects", ao.DomainName, ao.Scope)
	}
	if eo.Region != "R2" || eo.Availability != "internal" || !tlsConfig.InsecureSkipVerify || !ao.AllowReauth {
		t.Errorf("region %q availability %q insecure %v reauth %v", eo.Region, eo.Availability, tlsConfig.InsecureSkipVerify, ao.AllowReauth)
	}
	if strings.Contains(src.Description+src.User+src.Project+src.AuthURL, "secret-pw") {
		t.Error("authSource holds the password")
	}

	// Only OS_USER_DOMAIN_NAME: the project is looked up in the same domain.
	delete(env, "OS_PROJECT_DOMAIN_NAME")
	ao, _, _, _, err = parseAuth(&AuthConfig{}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if ao.Scope == nil || ao.Scope.DomainName != "Users" {
		t.Errorf("scope %+v; want the project in domain Users", ao.Scope)
	}
}

func TestAuthErrorsSayWhatToSet(t *testing.T) {
	_, _, _, _, err := parseAuth(&AuthConfig{}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "cloud: no credentials") {
		t.Errorf("no credentials: %v", err)
	}
	_, _, _, _, err = parseAuth(&AuthConfig{Cloud: "nope", CloudsFile: "/nonexistent/clouds.yaml"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "clouds_file") {
		t.Errorf("missing clouds file: %v", err)
	}
	env := map[string]string{"OS_AUTH_URL": "http://k/v3", "OS_INSECURE": "maybe", "OS_USERNAME": "u"}
	_, _, _, _, err = parseAuth(&AuthConfig{}, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "OS_INSECURE") {
		t.Errorf("bad OS_INSECURE: %v", err)
	}
}

// roundTripManifest writes m as the builders and winbake-sysprep do and reads
// it back with winbake-glance's reader.
func roundTripManifest(t *testing.T, m any) *buildManifest {
	t.Helper()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "win.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	read, err := readManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	return read
}

// A builder's manifest (image.Manifest, which winbake-libvirt writes too)
// gives os_admin_user, hw_qemu_guest_agent, the KBs of the updates the
// image has and the source ISO's checksum; the user's properties win.
func TestDerivedProperties(t *testing.T) {
	yes := true
	bm := image.Manifest{Disk: "win.qcow2", Format: "qcow2", Firmware: "bios", Machine: "pc-i440fx-8.2", DiskInterface: "virtio-blk", NetDevice: "e1000",
		QemuGuestAgent: &yes, AdminUser: "Admin", ISOChecksum: "sha256:abc",
		Updates: []image.ManifestUpdate{
			{KB: "kb5034439", File: "windows11.0-kb5034439-x64.msu", Result: "installed"},
			{KB: "KB5031364", File: "ssu.cab", Result: "already_installed"},
			{KB: "KB5034439", File: "windows11.0-kb5034439-x64.cab", Result: "installed"},
			{KB: "KB5000011", File: "windows10.0-kb5000011-x64.cab", Result: "not_applicable"},
			{KB: "KB5000012", File: "windows10.0-kb5000012-x64.cab", Result: "failed"},
			{File: "driver.cab", Result: "installed"},
		}}
	bm.Windows.InstallationType, bm.Windows.Version, bm.Windows.Arch = "Client", "10.0.22631.2861", "amd64"
	m := roundTripManifest(t, bm)
	c := &Config{Family: "win11", Properties: map[string]string{"hw_vif_model": "virtio"}}
	p := imageProperties(c, &source{Manifest: m})
	want := map[string]string{
		"os_type": "windows", "os_distro": "windows", "os_version": "11", "hw_machine_type": "pc",
		"hw_firmware_type": "bios", "hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_qemu_guest_agent": "yes",
		"os_admin_user": "Admin", "winbake_source_iso_checksum": "sha256:abc",
		"winbake_updates": "KB5031364,KB5034439", "family": "win11", "architecture": "x86_64",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
	for _, k := range []string{"os_secure_boot", "hw_tpm_version", "hw_scsi_model"} {
		if _, ok := p[k]; ok {
			t.Errorf("%s set for a BIOS build without TPM on virtio-blk", k)
		}
	}
	c.Properties = map[string]string{"os_admin_user": "Override"}
	if p := imageProperties(c, &source{Manifest: m}); p["os_admin_user"] != "Override" {
		t.Errorf("user's os_admin_user lost: %q", p["os_admin_user"])
	}

	// Without the guest agent, updates or ISO checksum, no property
	// claims them.
	no := false
	bm.QemuGuestAgent, bm.Updates, bm.ISOChecksum, bm.AdminUser = &no, nil, "", ""
	p = imageProperties(&Config{}, &source{Manifest: roundTripManifest(t, bm)})
	for _, k := range []string{"hw_qemu_guest_agent", "winbake_updates", "winbake_source_iso_checksum"} {
		if v, ok := p[k]; ok {
			t.Errorf("%s = %q without it in the manifest", k, v)
		}
	}
	if p["os_admin_user"] != "Administrator" {
		t.Errorf("os_admin_user %q without admin_user, want Administrator", p["os_admin_user"])
	}
}

// winbake-sysprep's manifest (the builder's with cloudbase-init's username
// as admin_user) gives the same properties, with that account.
func TestDerivedPropertiesFromSysprepManifest(t *testing.T) {
	yes := true
	sm := image.GeneralizedManifest{Manifest: image.Manifest{Disk: "win.qcow2", Format: "qcow2", Firmware: "uefi", Machine: "q35", DiskInterface: "virtio-scsi",
		NetDevice: "virtio-net", TPM: true, QemuGuestAgent: &yes, AdminUser: "Admin", ISOChecksum: "sha256:" + strings.Repeat("c", 64),
		Updates: []image.ManifestUpdate{{KB: "KB5044281", File: "windows10.0-kb5044281-x64.msu", Result: "installed"}}},
		Generalized: true, CloudbaseInit: true}
	sm.Windows.ImageName = "Windows Server 2022 SERVERDATACENTER"
	p := imageProperties(&Config{}, &source{Manifest: roundTripManifest(t, sm)})
	want := map[string]string{
		"os_admin_user": "Admin", "hw_qemu_guest_agent": "yes", "winbake_updates": "KB5044281",
		"winbake_source_iso_checksum": sm.ISOChecksum, "os_version": "2022", "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi",
		"hw_tpm_version": "2.0", "os_secure_boot": "optional",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
}

func TestWindowsVersionFromBuildNumber(t *testing.T) {
	for _, tc := range []struct{ name, typ, version, want string }{
		{"Windows Server 2025 SERVERDATACENTER", "Server", "10.0.26100.1", "2025"},
		{"", "Server Core", "10.0.20348.587", "2022"},
		{"", "Server", "10.0.17763.1", "2019"},
		{"", "Client", "10.0.19045.1", "10"},
		{"Windows 11 Pro", "Client", "", "11"},
	} {
		m := &buildManifest{}
		m.Windows.ImageName, m.Windows.InstallationType, m.Windows.Version = tc.name, tc.typ, tc.version
		if got := windowsVersion(m); got != tc.want {
			t.Errorf("windowsVersion(%q, %q, %q) = %q, want %q", tc.name, tc.typ, tc.version, got, tc.want)
		}
	}
}

func TestSecureBootAndLongUpdateLists(t *testing.T) {
	m := &buildManifest{}
	m.Firmware, m.Machine = "uefi", "q35"
	m.Windows.ImageName = "Windows 11 Pro"
	for i := 0; i < 40; i++ {
		m.Updates = append(m.Updates, image.ManifestUpdate{KB: fmt.Sprintf("KB50%05d", i), Result: "installed"})
	}
	p := deriveProperties(&Config{}, &source{Manifest: m})
	if p["os_secure_boot"] != "required" {
		t.Errorf("Windows 11 on UEFI q35: os_secure_boot %q, want required", p["os_secure_boot"])
	}
	if v := p["winbake_updates"]; len(v) > maxPropertyValue || !strings.HasSuffix(v, ",...") || !strings.HasPrefix(v, "KB5000000,KB5000001") {
		t.Errorf("winbake_updates (%d chars) = %q; want at most %d chars ending in ,...", len(v), v, maxPropertyValue)
	}
	m.Windows.ImageName = "Windows Server 2022 SERVERSTANDARD"
	if p := deriveProperties(&Config{}, &source{Manifest: m}); p["os_secure_boot"] != "optional" {
		t.Errorf("Server 2022 on UEFI q35: os_secure_boot %q, want optional", p["os_secure_boot"])
	}
}
