//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneMistakeTemplate is a valid build (a winbake-qemu source, a
// winbake-updates provisioner, a winbake-glance post-processor) with the
// lines of one mistake put into the source, the provisioner or the
// post-processor.
func oneMistakeTemplate(iso, packages, source, provisioner, postProcessor string) string {
	return fmt.Sprintf(`
source "winbake-qemu" "win" {
  iso_url          = %q
  iso_checksum     = "none"
  image_name       = "Windows Server 2022 SERVERSTANDARDCORE"
  disk_interface   = "sata"
  net_device       = "e1000"
  output_directory = "never-written"
%s
}

build {
  sources = ["source.winbake-qemu.win"]

  provisioner "winbake-updates" {
    packages = [%q]
%s
  }

  post-processor "winbake-glance" {
    image_name = "Windows Server 2022"
%s
  }
}
`, iso, source, packages, provisioner, postProcessor)
}

// Bad input is stopped at `packer validate` through real Packer: each
// one-mistake template fails with an error naming the field, a valid one
// passes, and virtio-net without the virtio-win ISO is a warning.
func TestValidateRefusesOneMistakeTemplates(t *testing.T) {
	dir := t.TempDir()
	iso := filepath.Join(dir, "windows.iso")
	msu := filepath.Join(dir, "updates", "windows10.0-kb5044281-x64.msu")
	for _, f := range []string{iso, msu} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("stand-in"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	packages := filepath.Join(dir, "updates", "*.msu")
	validate := func(t *testing.T, template string) (string, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "build.pkr.hcl")
		if err := os.WriteFile(path, []byte(template), 0o644); err != nil {
			t.Fatal(err)
		}
		return installed.run(dir, "validate", path)
	}

	out, err := validate(t, oneMistakeTemplate(iso, packages, "", "", ""))
	if err != nil {
		t.Fatalf("the valid template fails: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name     string
		iso      string
		packages string
		lines    [3]string // source, provisioner, post-processor
		want     string
	}{
		{"iso_url missing", filepath.Join(dir, "no-such.iso"), packages, [3]string{}, "iso_url: " + filepath.Join(dir, "no-such.iso") + " does not exist"},
		{"iso_url malformed", "htps://example.com/windows.iso", packages, [3]string{}, `iso_url: "htps://example.com/windows.iso" has the scheme "htps"`},
		{"md5 checksum of the wrong length", iso, packages, [3]string{}, "a md5 checksum has 32 hex digits, this one 31"},
		{"cpus = 0", iso, packages, [3]string{"  cpus = 0"}, "cpus: 0 is out of range; use 1 to 64"},
		{"efi_firmware_code missing", iso, packages, [3]string{`  efi_firmware_code = "/nonexistent/OVMF_CODE_4M.fd"
  efi_firmware_vars = "/nonexistent/OVMF_VARS_4M.fd"`}, "efi_firmware_code: /nonexistent/OVMF_CODE_4M.fd is not a file on this machine"},
		{"update glob matching nothing", iso, filepath.Join(dir, "updates", "*.cab"), [3]string{}, "packages[0]: \"" + filepath.Join(dir, "updates", "*.cab") + "\" matches no file"},
		{"update checksum that does not match", iso, packages, [3]string{"", `    package {
      path     = "` + msu + `"
      checksum = "sha256:` + strings.Repeat("0", 64) + `"
    }`}, "package[0].checksum: " + msu + " has SHA-256"},
		{"glance hw_firmware_type efi", iso, packages, [3]string{"", "", `    properties = { hw_firmware_type = "efi" }`}, `properties: hw_firmware_type = "efi" is not a value Nova accepts; use one of bios, uefi`},
		{"glance cacert missing", iso, packages, [3]string{"", "", `    cacert = "/nonexistent/ca.pem"`}, "cacert: open /nonexistent/ca.pem"},
		{"glance name too long", iso, packages, [3]string{"", "", `    image_name = "` + strings.Repeat("w", 256) + `"`}, "image_name: 256 characters; Glance takes names of up to 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			template := oneMistakeTemplate(tc.iso, tc.packages, tc.lines[0], tc.lines[1], tc.lines[2])
			if strings.HasPrefix(tc.name, "md5") {
				template = strings.Replace(template, `iso_checksum     = "none"`, `iso_checksum     = "md5:`+strings.Repeat("a", 31)+`"`, 1)
			}
			if strings.Contains(tc.lines[2], "image_name") {
				template = strings.Replace(template, `    image_name = "Windows Server 2022"`+"\n", "", 1)
			}
			out, err := validate(t, template)
			if err == nil {
				t.Fatalf("packer validate accepted it:\n%s", out)
			}
			// Packer wraps long messages.
			if !strings.Contains(strings.Join(strings.Fields(out), " "), tc.want) {
				t.Errorf("packer validate's output lacks %q:\n%s", tc.want, out)
			}
		})
	}

	t.Run("virtio-net without drivers warns", func(t *testing.T) {
		template := strings.Replace(oneMistakeTemplate(iso, packages, "", "", ""), `  net_device       = "e1000"`+"\n", "", 1)
		out, err := validate(t, template)
		if err != nil {
			t.Fatalf("packer validate: %v\n%s", err, out)
		}
		if !strings.Contains(strings.Join(strings.Fields(out), " "), `net_device: "virtio-net" (the default) needs the NetKVM driver`) {
			t.Errorf("no warning about net_device:\n%s", out)
		}
	})
}
