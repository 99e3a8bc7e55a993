package glance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Every mistake knowable before the upload is refused at Configure
// (`packer validate`): one error naming the setting and what is accepted.
func TestOneMistakeIsRefusedAtValidate(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  map[string]interface{}
		want []string
	}{
		{"cacert missing", map[string]interface{}{"cacert": "/nonexistent/ca.pem"}, []string{"cacert: open /nonexistent/ca.pem", "give a PEM file"}},
		{"cacert not PEM", map[string]interface{}{"cacert": notPEM}, []string{"cacert: " + notPEM + " holds no PEM certificate"}},
		{"cert and key missing", map[string]interface{}{"cert": "/nonexistent/c.pem", "key": "/nonexistent/k.pem"}, []string{"cert, key: "}},
		{"name over 255 characters", map[string]interface{}{"image_name": strings.Repeat("Windows Server 2022 ", 13)}, []string{"image_name: 260 characters; Glance takes names of up to 255"}},
		{"hw_firmware_type efi", map[string]interface{}{"properties": map[string]string{"hw_firmware_type": "efi"}}, []string{`properties: hw_firmware_type = "efi" is not a value Nova accepts; use one of bios, uefi`}},
		{"hw_disk_bus virtio-blk", map[string]interface{}{"properties": map[string]string{"hw_disk_bus": "virtio-blk"}}, []string{`properties: hw_disk_bus = "virtio-blk"`, "virtio"}},
		{"hw_vif_model virtio-net", map[string]interface{}{"properties": map[string]string{"hw_vif_model": "virtio-net"}}, []string{`properties: hw_vif_model = "virtio-net"`}},
		{"hw_scsi_model virtio", map[string]interface{}{"properties": map[string]string{"hw_scsi_model": "virtio"}}, []string{`properties: hw_scsi_model = "virtio"`, "virtio-scsi"}},
		{"os_type win", map[string]interface{}{"properties": map[string]string{"os_type": "win"}}, []string{`properties: os_type = "win"`, "linux, windows"}},
		{"os_secure_boot yes", map[string]interface{}{"properties": map[string]string{"os_secure_boot": "yes"}}, []string{`properties: os_secure_boot = "yes"`, "required, disabled, optional"}},
		{"hw_tpm_version 2", map[string]interface{}{"properties": map[string]string{"hw_tpm_version": "2"}}, []string{`properties: hw_tpm_version = "2"`, "1.2, 2.0"}},
		{"tpm-crb with TPM 1.2", map[string]interface{}{"properties": map[string]string{"hw_tpm_model": "tpm-crb", "hw_tpm_version": "1.2"}}, []string{`hw_tpm_model = "tpm-crb" needs hw_tpm_version = "2.0"`}},
		{"architecture x64", map[string]interface{}{"properties": map[string]string{"architecture": "x64"}}, []string{`properties: architecture = "x64"`, "x86_64"}},
		{"hw_cpu_cores two", map[string]interface{}{"properties": map[string]string{"hw_cpu_cores": "two"}}, []string{`properties: hw_cpu_cores = "two" is not a whole number`}},
		{"a value over 255 characters", map[string]interface{}{"properties": map[string]string{"owner_team": strings.Repeat("x", 256)}}, []string{"properties: owner_team has a value of 256 characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := map[string]interface{}{"image_name": "Windows Server 2022"}
			for k, v := range tc.set {
				raw[k] = v
			}
			var p PostProcessor
			err := p.Configure(raw)
			var errs []error
			if m, ok := err.(*packersdk.MultiError); ok {
				errs = m.Errors
			} else if err != nil {
				errs = []error{err}
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error %q lacks %q", errs[0], w)
				}
			}
		})
	}
	// Values Nova takes pass, in the case it folds.
	var p PostProcessor
	if err := p.Configure(map[string]interface{}{"image_name": "w", "properties": map[string]string{
		"hw_firmware_type": "uefi", "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi", "hw_vif_model": "VirtualE1000",
		"os_type": "Windows", "hw_tpm_model": "tpm-crb", "hw_tpm_version": "2.0", "architecture": "amd64", "hw_cpu_cores": "4"}}); err != nil {
		t.Errorf("valid properties refused: %v", err)
	}
}

type sayings []string

func (s *sayings) Say(m string) { *s = append(*s, m) }

// The user's properties on top of the derived ones: a conflict only the
// build's manifest shows (TPM 1.2 with the derived tpm-crb model) is
// refused before the image is created, and a property that replaces a
// derived value is named.
func TestMergedPropertiesAreChecked(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "ws2022.qcow2")
	m := writeManifest(t, filepath.Join(dir, "ws2022.json"), disk)
	src := &source{Path: disk, Manifest: &buildManifest{Manifest: m}}

	var said sayings
	c := &Config{Properties: map[string]string{"hw_tpm_version": "1.2"}}
	if err := checkMergedProperties(&said, c, src); err == nil || !strings.Contains(err.Error(), `hw_tpm_model = "tpm-crb" needs hw_tpm_version = "2.0"`) {
		t.Errorf("error %v", err)
	}
	said = nil
	c = &Config{Properties: map[string]string{"hw_firmware_type": "bios"}}
	if err := checkMergedProperties(&said, c, src); err != nil {
		t.Fatal(err)
	}
	if len(said) != 1 || !strings.Contains(said[0], `hw_firmware_type = "bios" replaces "uefi"`) {
		t.Errorf("said %q", said)
	}
}
