package qemu

import (
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

func testConfig() map[string]interface{} {
	return map[string]interface{}{
		"iso_url":           "testdata/win.iso",
		"iso_checksum":      "none",
		"image_name":        "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win",
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	warns, err := c.Prepare(testConfig())
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	_ = warns
	if c.Comm.Type != "winrm" || c.Comm.WinRMUser != "Administrator" || c.Comm.WinRMPassword == "" {
		t.Errorf("communicator %q user %q", c.Comm.Type, c.Comm.WinRMUser)
	}
	if c.OutputDir != "output-win" || c.VMName != "packer-win" || c.Firmware != qemuvm.FirmwareUEFI || !c.TPMEnabled() {
		t.Errorf("output %q vm %q firmware %q", c.OutputDir, c.VMName, c.Firmware)
	}
	if c.BootWait != 3*time.Second || len(c.bootKeys) != 7 || c.UnattendMedia != "cd" {
		t.Errorf("boot wait %s keys %d media %q", c.BootWait, len(c.bootKeys), c.UnattendMedia)
	}
	var bios Config
	raw := testConfig()
	raw["firmware"] = "bios"
	if _, err := bios.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if len(bios.bootKeys) != 0 || bios.TPMEnabled() {
		t.Errorf("BIOS: keys %v tpm %v", bios.bootKeys, bios.TPMEnabled())
	}
}

func TestConfigRejects(t *testing.T) {
	cases := []struct {
		name  string
		key   string
		value interface{}
		field string
	}{
		{"firmware", "firmware", "efi", "firmware:"},
		{"disk bus", "disk_interface", "ide", "disk_interface:"},
		{"nic", "net_device", "rtl8139", "net_device:"},
		{"accelerator", "accelerator", "hvf", "accelerator:"},
		{"cpus", "cpus", 100, "cpus:"},
		{"memory", "memory", 128, "memory:"},
		{"small disk", "disk_size", 10240, "disk_size"},
		{"port", "host_port_min", 70000, "host_port_min:"},
		{"shutdown timeout", "shutdown_timeout", "-1s", "shutdown_timeout:"},
		{"boot wait", "boot_wait", "-1s", "boot_wait:"},
		{"boot command", "boot_command", []string{"<hyper>"}, "boot_command:"},
		{"qemu_args", "qemu_args", [][]string{{"device", "x"}}, "qemu_args:"},
		{"communicator", "communicator", "ssh", "communicator:"},
		{"winrm host", "winrm_host", "10.0.0.1", "winrm_host:"},
		{"network", "network", "tap", "network:"},
		{"floppy on UEFI", "unattend_media", "floppy", "unattend_media:"},
		{"unattend media", "unattend_media", "usb", "unattend_media:"},
		{"tpm on bios needs firmware", "tpm", "maybe", "tpm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := testConfig()
			raw[tc.key] = tc.value
			var c Config
			_, err := c.Prepare(raw)
			if err == nil {
				t.Fatalf("%s = %v accepted", tc.key, tc.value)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

// A virtio disk without the virtio-win ISO is warned about (Setup would
// see no disk unless the image has the driver).
func TestConfigWarnsVirtioDiskWithoutDrivers(t *testing.T) {
	var c Config
	warns, err := c.Prepare(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(warns, "disk_interface:") || !strings.Contains(strings.Join(warns, "\n"), "virtio_win_iso_url is unset") {
		t.Errorf("warnings %q", warns)
	}
	raw := testConfig()
	raw["disk_interface"] = "sata"
	var sata Config
	if warns, err := sata.Prepare(raw); err != nil || hasWarning(warns, "disk_interface:") {
		t.Errorf("sata: %q, %v", warns, err)
	}
}

func TestConfigRequiresImageAndISO(t *testing.T) {
	var c Config
	_, err := c.Prepare(map[string]interface{}{"packer_build_name": "x"})
	if err == nil || !strings.Contains(err.Error(), "image_name") || !strings.Contains(err.Error(), "iso_url") {
		t.Fatalf("error %v should name image_name and iso_url", err)
	}
}

func hasWarning(warns []string, prefix string) bool {
	for _, w := range warns {
		if strings.HasPrefix(w, prefix) {
			return true
		}
	}
	return false
}

// On a bridge WinRM speaks HTTPS on 5986 (pinned at run time); on the
// user network HTTP on 5985 stays, unless winrm_use_ssl asks for HTTPS.
func TestConfigWinRMTransportByNetwork(t *testing.T) {
	for _, tc := range []struct {
		network, bridge string
		useSSL          bool
		port            int
	}{
		{"user", "", false, 5985},
		{"user", "", true, 5986},
		{"bridge", "br0", false, 5986},
	} {
		raw := testConfig()
		raw["network"], raw["winrm_use_ssl"] = tc.network, tc.useSSL
		if tc.bridge != "" {
			raw["bridge"] = tc.bridge
		}
		var c Config
		if _, err := c.Prepare(raw); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if c.Comm.WinRMPort != tc.port || c.Comm.WinRMUseSSL != (tc.port == 5986) || c.WinRMOverHTTPS() != (tc.port == 5986) {
			t.Errorf("%+v: port %d, winrm_use_ssl %t", tc, c.Comm.WinRMPort, c.Comm.WinRMUseSSL)
		}
	}
}
